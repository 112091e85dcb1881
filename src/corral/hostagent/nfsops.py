"""``nfs.*``: the volumes of an nfs storage domain, worked on from a host with QEMU's own NFS
client (no kernel mount): libnfs (:mod:`.libnfs`) for reach, space, listing and removal, and
``qemu-img`` with ``nfs://SERVER/EXPORT/NAME`` URLs for what writes images.

Every op takes ``server`` and ``export``; the volume ops a ``name`` (a plain file name in the
export's top directory: no ``/``, not hidden). ``nfs.check`` proves more than a mount: it
makes and removes a directory, so an export that squashes root (QEMU writes as root) is
caught before any VM relies on it.

``nfs.write`` is the one op with a body: the raw bytes of a new file follow its JSON request
line on stdin (an image uploaded into the domain). They go to a hidden temporary file
(``.corral-upload-…``: no listing shows it) renamed to ``name`` once all ``size_bytes`` have
arrived and are on the server's disk; a body that ends early removes it, so an interrupted
upload leaves nothing behind. Nothing is staged on the host's own disk.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import subprocess
from typing import Any, BinaryIO

from .libnfs import NfsMount, mounted
from .protocol import AgentError

#: How long one libnfs call or qemu-img run may take before the op says so.
CALL_TIMEOUT_S = 15.0
_SERVER = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,254}$")  # _iso.NAME: images
RPCBIND_PORT = 111
PROBE_PREFIX = ".corral-probe-"
UPLOAD_PREFIX = ".corral-upload-"
#: Bytes read from stdin and written to the server at a time.
WRITE_BLOCK = 1024 * 1024


def _place(args: dict[str, Any]) -> tuple[str, str]:
    server, export = args.get("server"), args.get("export")
    if not isinstance(server, str) or not _SERVER.match(server):
        raise AgentError(f"server must be a host name or address, not {server!r}")
    if (
        not isinstance(export, str)
        or not export.startswith("/")
        or any(part in (".", "..") for part in export.split("/"))
    ):
        raise AgentError(f"export must be an absolute path, not {export!r}")
    return server, export.rstrip("/") or "/"


def _name(args: dict[str, Any], key: str = "name") -> str:
    name = args.get(key)
    if not isinstance(name, str) or not _NAME.match(name):
        raise AgentError(f"{key} must be a plain file name, not {name!r}")
    return name


def _size(args: dict[str, Any]) -> int:
    size = args.get("size_bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise AgentError(f"size_bytes must be a positive integer, not {size!r}")
    return size


def url(server: str, export: str, name: str) -> str:
    return f"nfs://{server}{export.rstrip('/')}/{name}"


def _probe_rpcbind(server: str) -> None:
    """Say plainly why a server cannot be reached (libnfs only says 'nfs_service failed')."""
    host = server.strip("[]")
    try:
        with socket.create_connection((host, RPCBIND_PORT), timeout=CALL_TIMEOUT_S / 3):
            pass
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise AgentError(
            f"cannot reach NFS server {server} (rpcbind, TCP port {RPCBIND_PORT}): {why}"
        ) from exc


def _qemu_img(*argv: str) -> str:
    try:
        done = subprocess.run(
            ["qemu-img", *argv], capture_output=True, text=True, timeout=CALL_TIMEOUT_S * 4
        )
    except FileNotFoundError as exc:
        raise AgentError("the host has no qemu-img (apt-get install qemu-utils)") from exc
    except subprocess.TimeoutExpired as exc:
        raise AgentError(f"qemu-img {argv[0]} did not finish in time") from exc
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise AgentError(f"qemu-img {argv[0]} failed: {lines[-1] if lines else done.returncode}")
    return done.stdout


def _info(target: str) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(_qemu_img("info", "-U", "--output=json", target))
    return info


def check(args: dict[str, Any]) -> dict[str, Any]:
    server, export = _place(args)
    _probe_rpcbind(server)
    with mounted(server, export, CALL_TIMEOUT_S) as nfs:
        size = nfs.size()
        probe = PROBE_PREFIX + secrets.token_hex(4)
        try:
            nfs.mkdir(probe)
        except AgentError as exc:
            raise AgentError(
                f"{nfs.where} does not let root write (Corral's VMs write as root: export it "
                f"with no_root_squash): {exc}"
            ) from exc
        nfs.rmdir(probe)
    return {"capacity_bytes": size.capacity_bytes, "free_bytes": size.free_bytes}


def _volume(server: str, export: str, name: str, size: int) -> dict[str, Any]:
    info = _info(url(server, export, name))
    return {
        "name": name,
        "format": info.get("format", "raw"),
        "capacity_bytes": int(info.get("virtual-size", size)),
        "allocation_bytes": size,
        "backing": info.get("backing-filename"),
    }


def list_volumes(args: dict[str, Any]) -> dict[str, Any]:
    server, export = _place(args)
    with mounted(server, export, CALL_TIMEOUT_S) as nfs:
        entries = [e for e in nfs.list() if e.regular and not e.name.startswith(".")]
        size = nfs.size()
    volumes = [
        _volume(server, export, e.name, e.size) for e in sorted(entries, key=lambda e: e.name)
    ]
    return {"volumes": volumes, "free_bytes": size.free_bytes}


def _absent(nfs: NfsMount, name: str) -> None:
    if nfs.exists(name):
        raise AgentError(f"{nfs.where} already has a file {name}")


def create(args: dict[str, Any]) -> dict[str, Any]:
    server, export = _place(args)
    name, size = _name(args), _size(args)
    with mounted(server, export, CALL_TIMEOUT_S) as nfs:
        _absent(nfs, name)  # qemu-img create would truncate an existing file
        _qemu_img("create", "-q", "-f", "qcow2", url(server, export, name), str(size))
        return _volume(server, export, name, size)


def clone(args: dict[str, Any]) -> dict[str, Any]:
    """A qcow2 volume standing on ``base``, named by its full ``nfs://`` URL: QEMU 7.2's NFS
    driver resolves a relative backing name against the image's own URL as if it were a
    directory (``…/clone.qcow2/base.qcow2``), and the guest would not start."""
    server, export = _place(args)
    name, base = _name(args), _name(args, "base")
    with mounted(server, export, CALL_TIMEOUT_S) as nfs:
        _absent(nfs, name)
        if not nfs.exists(base):
            raise AgentError(f"{nfs.where} has no file {base}")
        base_format = str(_info(url(server, export, base)).get("format", "raw"))
        _qemu_img("create", "-q", "-f", "qcow2", "-F", base_format,
                  "-b", url(server, export, base), url(server, export, name))  # fmt: skip
        return _volume(server, export, name, 0)


def resize(args: dict[str, Any]) -> dict[str, Any]:
    server, export = _place(args)
    name, size = _name(args), _size(args)
    target = url(server, export, name)
    _qemu_img("resize", "-q", "-f", str(_info(target).get("format", "raw")), target, str(size))
    return {}


def delete(args: dict[str, Any]) -> dict[str, Any]:
    server, export = _place(args)
    name = _name(args)
    with mounted(server, export, CALL_TIMEOUT_S) as nfs:
        nfs.unlink(name)
    return {}


def _fill(nfs: NfsMount, temp: str, stream: BinaryIO, size: int) -> None:
    with nfs.new_file(temp) as file:
        while file.written < size:
            chunk = stream.read(min(WRITE_BLOCK, size - file.written))
            if not chunk:
                raise AgentError(
                    f"the data ended after {file.written} of {size} bytes: nothing was kept"
                )
            file.write(chunk)


def write(args: dict[str, Any], stream: BinaryIO) -> dict[str, Any]:
    """A new file ``name`` of exactly ``size_bytes`` bytes read from ``stream``."""
    server, export = _place(args)
    name, size = _name(args), _size(args)
    with mounted(server, export, CALL_TIMEOUT_S) as nfs:
        _absent(nfs, name)
        temp = UPLOAD_PREFIX + secrets.token_hex(6)
        try:
            _fill(nfs, temp, stream, size)
            _absent(nfs, name)  # NFS rename replaces a file: never an image made meanwhile
            nfs.rename(temp, name)
        except BaseException:
            if nfs.exists(temp):
                nfs.unlink(temp)
            raise
    return {"name": name, "bytes": size}


#: Ops whose request line is followed by a body on stdin (given as the second argument).
STREAM_OPS = {"nfs.write": write}

OPS = {
    "nfs.check": check,
    "nfs.list": list_volumes,
    "nfs.create": create,
    "nfs.clone": clone,
    "nfs.resize": resize,
    "nfs.delete": delete,
}
