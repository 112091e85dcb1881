"""Writing a file so that readers see the old content or the new one, never a part."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

#: Leftovers of writes that never finished match ``TEMPORARY_GLOB`` in their directory.
TEMPORARY_GLOB = ".*.tmp"


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to a temporary file beside ``path`` created with ``mode`` (a key is never
    readable by others, not even for a moment), fsync it, then rename it over ``path``. The
    temporary name is unique, so that writers of one path (threads of one process too) never
    share it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)  # the umask may have taken bits away
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
