"""A writer for the cpio "newc" format the Linux kernel unpacks as an initramfs.

Written in Python rather than calling the ``cpio`` tool so that an initramfs can hold device nodes
(``/dev/console``) without ``mknod`` and so that its bytes depend only on its inputs: every entry
gets mtime 0, uid/gid 0 and an inode number from its position.

Format (see the kernel's ``Documentation/driver-api/early-userspace/buffer-format.rst``): per
entry a 110-byte ASCII header (magic ``070701`` and 13 eight-digit hex fields), the NUL-terminated
name padded to a multiple of 4, then the data padded to a multiple of 4; the archive ends with an
entry named ``TRAILER!!!``.
"""

from __future__ import annotations

import gzip
import stat
from collections.abc import Iterable
from dataclasses import dataclass

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class CpioEntry:
    """One archive member; ``name`` is relative (no leading slash), ``mode`` includes type bits."""

    name: str
    mode: int
    data: bytes = b""
    rdev_major: int = 0
    rdev_minor: int = 0


def directory(name: str, perm: int = 0o755) -> CpioEntry:
    return CpioEntry(name, stat.S_IFDIR | perm)


def regular(name: str, data: bytes, perm: int = 0o644) -> CpioEntry:
    return CpioEntry(name, stat.S_IFREG | perm, data)


def symlink(name: str, target: str) -> CpioEntry:
    # A symlink's data is its target, without a terminating NUL.
    return CpioEntry(name, stat.S_IFLNK | 0o777, target.encode())


def char_device(name: str, major: int, minor: int, perm: int = 0o600) -> CpioEntry:
    return CpioEntry(name, stat.S_IFCHR | perm, rdev_major=major, rdev_minor=minor)


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _header(entry: CpioEntry, ino: int) -> bytes:
    name = entry.name.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (
        ino,
        entry.mode,
        0,  # uid
        0,  # gid
        nlink,
        0,  # mtime
        len(entry.data),
        0,  # devmajor
        0,  # devminor
        entry.rdev_major,
        entry.rdev_minor,
        len(name),
        0,  # check (only used by the "crc" variant)
    )
    head = MAGIC + b"".join(b"%08X" % value for value in fields) + name
    return head + _pad4(len(head))


def newc_archive(entries: Iterable[CpioEntry]) -> bytes:
    """Pack ``entries`` in the given order (parents must come before their children)."""
    parts: list[bytes] = []
    seen: set[str] = set()
    for ino, entry in enumerate(entries, start=1):
        if entry.name.startswith("/") or not entry.name:
            raise ValueError(f"cpio member names are relative and non-empty, got {entry.name!r}")
        if entry.name in seen:
            raise ValueError(f"duplicate cpio member {entry.name!r}")
        seen.add(entry.name)
        parts.append(_header(entry, ino))
        parts.append(entry.data + _pad4(len(entry.data)))
    parts.append(_header(CpioEntry(TRAILER, 0), 0))
    return b"".join(parts)


def gzip_initramfs(entries: Iterable[CpioEntry]) -> bytes:
    """A gzip-compressed newc archive with a fixed gzip timestamp (reproducible bytes)."""
    return gzip.compress(newc_archive(entries), compresslevel=6, mtime=0)
