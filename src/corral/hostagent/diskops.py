"""``disk.copy``: copy a disk image into an existing volume on the host with ``qemu-img
convert -n`` (a shut-off VM's disk moving to or from a storage domain QEMU reaches directly,
``nfs://``, where libvirt has no pool to clone through).

Args: ``source`` and ``target`` (each an absolute path on the host or an
``nfs://SERVER/EXPORT/NAME`` URL), ``source_format`` (``raw`` or ``qcow2``: never probed, a
guest could have written a qcow2 header into a raw disk). The target exists already (the
storage domain made it, with the source's virtual size) and becomes qcow2 content.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

from .protocol import AgentError

#: How long one copy may take (a 2 GiB disk over NFS on a busy test machine takes seconds).
COPY_TIMEOUT_S = 3600.0
_PATH = re.compile(r"^/[^\x00-\x1f]*$")
_NFS = re.compile(r"^nfs://[A-Za-z0-9.\[\]:-]+/[^\x00-\x1f?#]*$")
_FORMATS = ("raw", "qcow2")


def _place(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not (_PATH.match(value) or _NFS.match(value)):
        raise AgentError(f"{key} must be an absolute path or an nfs:// URL, not {value!r}")
    if any(part == ".." for part in value.split("/")):
        raise AgentError(f"{key} must not contain '..': {value!r}")
    return value


def copy(args: dict[str, Any]) -> dict[str, Any]:
    source, target = _place(args, "source"), _place(args, "target")
    fmt = args.get("source_format")
    if fmt not in _FORMATS:
        raise AgentError(f"source_format must be one of {', '.join(_FORMATS)}, not {fmt!r}")
    argv = ["qemu-img", "convert", "-n", "-f", str(fmt), "-O", "qcow2", source, target]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COPY_TIMEOUT_S)
    except FileNotFoundError as exc:
        raise AgentError("the host has no qemu-img (apt-get install qemu-utils)") from exc
    except subprocess.TimeoutExpired as exc:
        raise AgentError(f"copying {source} to {target} took over {COPY_TIMEOUT_S:g} s") from exc
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit status {done.returncode}"
        raise AgentError(f"copying {source} to {target} failed: {why}")
    return {"source": source, "target": target}


OPS = {"disk.copy": copy}
