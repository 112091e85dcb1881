"""A few calls of libnfs (the userspace NFS client QEMU uses, ``libnfs.so.13`` from Debian's
``libnfs13``, which ``qemu-block-extra`` pulls in) through ctypes: mount an export, list a
directory, stat, statvfs, mkdir/rmdir, unlink, rename, and writing a new file. No kernel NFS
client is needed (this machine's kernel has none).

Only the synchronous API of libnfs 4.x (soname 13) is used; each call is bounded by
``nfs_set_timeout``. Every failure is an :class:`AgentError` with libnfs's own words.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .protocol import AgentError

LIBRARY = "libnfs.so.13"
NF3REG = 1  # libnfs-raw-nfs.h: a regular file in nfsdirent.type
_VP = ctypes.c_void_p
_STR = ctypes.c_char_p


class _Dirent(ctypes.Structure):
    """The leading fields of ``struct nfsdirent`` (libnfs.h); later fields are never read."""


_Dirent._fields_ = [
    ("next", ctypes.POINTER(_Dirent)),
    ("name", _STR),
    ("inode", ctypes.c_uint64),
    ("type", ctypes.c_uint32),
    ("mode", ctypes.c_uint32),
    ("size", ctypes.c_uint64),
]

#: name -> (restype, argtypes)
_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "nfs_init_context": (_VP, []),
    "nfs_destroy_context": (None, [_VP]),
    "nfs_get_error": (_STR, [_VP]),
    "nfs_set_timeout": (None, [_VP, ctypes.c_int]),
    "nfs_mount": (ctypes.c_int, [_VP, _STR, _STR]),
    "nfs_statvfs64": (ctypes.c_int, [_VP, _STR, _VP]),
    "nfs_stat64": (ctypes.c_int, [_VP, _STR, _VP]),
    "nfs_mkdir": (ctypes.c_int, [_VP, _STR]),
    "nfs_rmdir": (ctypes.c_int, [_VP, _STR]),
    "nfs_unlink": (ctypes.c_int, [_VP, _STR]),
    "nfs_opendir": (ctypes.c_int, [_VP, _STR, ctypes.POINTER(_VP)]),
    "nfs_readdir": (ctypes.POINTER(_Dirent), [_VP, _VP]),
    "nfs_closedir": (None, [_VP, _VP]),
    "nfs_create": (ctypes.c_int, [_VP, _STR, ctypes.c_int, ctypes.c_int, ctypes.POINTER(_VP)]),
    "nfs_pwrite": (ctypes.c_int, [_VP, _VP, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_char_p]),
    "nfs_fsync": (ctypes.c_int, [_VP, _VP]),
    "nfs_close": (ctypes.c_int, [_VP, _VP]),
    "nfs_rename": (ctypes.c_int, [_VP, _STR, _STR]),
}


def _load() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL(LIBRARY)
    except OSError as exc:
        raise AgentError(
            f"the host has no {LIBRARY} (QEMU's NFS client): apt-get install qemu-block-extra"
        ) from exc
    for name, (restype, argtypes) in _SIGNATURES.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


@dataclass(frozen=True)
class Entry:
    name: str
    regular: bool
    size: int


@dataclass(frozen=True)
class FsSize:
    capacity_bytes: int
    free_bytes: int


class NfsMount:
    """One mounted export; paths are relative to the export's root (``/NAME``)."""

    def __init__(self, lib: ctypes.CDLL, context: int, where: str) -> None:
        self._lib = lib
        self._nfs = context
        self.where = where

    def _error(self, what: str) -> AgentError:
        message = self._lib.nfs_get_error(self._nfs)
        text = message.decode(errors="replace") if message else "no reason given"
        return AgentError(f"{self.where}: {what} failed: {text}")

    def _check(self, rc: int, what: str) -> None:
        if rc < 0:
            raise self._error(what)

    def size(self) -> FsSize:
        fields = (ctypes.c_uint64 * 16)()  # struct nfs_statvfs_64: 11 uint64 fields
        self._check(self._lib.nfs_statvfs64(self._nfs, b"/", fields), "statvfs")
        frsize = fields[1] or fields[0]
        return FsSize(capacity_bytes=fields[2] * frsize, free_bytes=fields[4] * frsize)

    def exists(self, name: str) -> bool:
        fields = (ctypes.c_uint64 * 32)()  # struct nfs_stat_64: 17 uint64 fields
        return bool(self._lib.nfs_stat64(self._nfs, f"/{name}".encode(), fields) == 0)

    def mkdir(self, name: str) -> None:
        self._check(self._lib.nfs_mkdir(self._nfs, f"/{name}".encode()), f"mkdir {name}")

    def rmdir(self, name: str) -> None:
        self._check(self._lib.nfs_rmdir(self._nfs, f"/{name}".encode()), f"rmdir {name}")

    def unlink(self, name: str) -> None:
        self._check(self._lib.nfs_unlink(self._nfs, f"/{name}".encode()), f"removing {name}")

    def rename(self, old: str, new: str) -> None:
        self._check(
            self._lib.nfs_rename(self._nfs, f"/{old}".encode(), f"/{new}".encode()),
            f"renaming {old} to {new}",
        )

    def pwrite(self, handle: ctypes.c_void_p, offset: int, data: bytes, name: str) -> int:
        """Write ``data`` at ``offset``; how much was written (at least a byte)."""
        rc = int(self._lib.nfs_pwrite(self._nfs, handle, offset, len(data), data))
        if rc <= 0:
            raise self._error(f"writing {name} at byte {offset}")
        return rc

    @contextmanager
    def new_file(self, name: str, mode: int = 0o600) -> Iterator[NfsFile]:
        """``name`` created (never an existing file: O_EXCL) and open for writing; closed at
        the end of the ``with`` (flushed to the server's disk first when it ends well)."""
        handle = _VP()
        flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY
        path = f"/{name}".encode()
        self._check(
            self._lib.nfs_create(self._nfs, path, flags, mode, ctypes.byref(handle)),
            f"creating {name}",
        )
        file = NfsFile(self, handle, name)
        try:
            yield file
            self._check(self._lib.nfs_fsync(self._nfs, handle), f"flushing {name}")
        finally:
            self._lib.nfs_close(self._nfs, handle)

    def list(self) -> list[Entry]:
        handle = _VP()
        self._check(self._lib.nfs_opendir(self._nfs, b"/", ctypes.byref(handle)), "listing")
        entries = []
        try:
            while True:
                entry = self._lib.nfs_readdir(self._nfs, handle)
                if not entry:
                    break
                item = entry.contents
                name = item.name.decode(errors="surrogateescape")
                entries.append(Entry(name, item.type == NF3REG, int(item.size)))
        finally:
            self._lib.nfs_closedir(self._nfs, handle)
        return entries


class NfsFile:
    """A file open for writing, filled from its start."""

    def __init__(self, mount: NfsMount, handle: ctypes.c_void_p, name: str) -> None:
        self._mount = mount
        self._handle = handle
        self.name = name
        self.written = 0

    def write(self, data: bytes) -> None:
        """All of ``data`` at the end of what was written (libnfs may write less at once)."""
        view = memoryview(data)
        while view:
            rc = self._mount.pwrite(self._handle, self.written, bytes(view), self.name)
            self.written += rc
            view = view[rc:]


@contextmanager
def mounted(server: str, export: str, timeout_s: float) -> Iterator[NfsMount]:
    """``server:export`` mounted with libnfs (NFSv3, as root: uid/gid 0 by AUTH_SYS)."""
    lib = _load()
    context = lib.nfs_init_context()
    if not context:
        raise AgentError("libnfs could not make a context (out of memory?)")
    try:
        lib.nfs_set_timeout(context, int(timeout_s * 1000))
        mount = NfsMount(lib, context, f"{server}:{export}")
        if lib.nfs_mount(context, server.encode(), export.encode()) < 0:
            raise mount._error("mount")
        yield mount
    finally:
        lib.nfs_destroy_context(context)
