"""Writing key material: atomic replacement, keys 0600, directories 0700."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from corral.files import write_atomic

__all__ = ["CERT_MODE", "DIR_MODE", "KEY_MODE", "locked", "private_dir", "write_atomic"]

KEY_MODE = 0o600
CERT_MODE = 0o644
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    path.chmod(DIR_MODE)
    return path


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on ``directory`` (``corral admin init`` and ``corral serve`` may both
    create missing certificates at once)."""
    with (directory / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
