"""``PoolStorage``: Corral's storage pool on one host (``host.storage``) — its volumes (blank,
linked clones, imports, uploads), their sizes and the pool's free space.

The pool is ensured (looked up, defined, started, autostarted) on first use on a connection;
the handle is kept per connection, see :meth:`PoolStorage.pool`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import libvirt

from corral.virt import _domain_pools, _storage, _transfer
from corral.virt._call_pool import in_background
from corral.virt._connection import ManagedConnection
from corral.virt._upload import VolumeWriter
from corral.virt.types import VolumeRef

#: Cached pool handles per host: one per connection calls run on (the events connection and
#: the call pool's, see _call_pool.POOL_SIZE) and a few more for connections being replaced.
MAX_HANDLES = 8


class PoolStorage:
    """One directory pool. ``build``: Corral's own pool is built (its directory made) when
    missing; a storage domain's is the administrator's mount and never is."""

    def __init__(
        self, conn: ManagedConnection, pool_name: str, pool_dir: str, *, build: bool = True
    ) -> None:
        self._conn = conn
        self.pool_name = pool_name
        self.pool_dir = pool_dir
        self._build = build
        #: id(connection) -> (connection, pool handle): calls run on several connections.
        self._handles: dict[int, tuple[libvirt.virConnect, libvirt.virStoragePool]] = {}

    def forget(self) -> None:
        """Drop the cached pool handles: each holds a reference on its connection, which would
        otherwise outlive a close, and is useless once that connection is gone. Dropped in a
        thread of their own: the last reference on a lost connection frees it, which waits on
        its dead socket (in the loop thread that stalled every request for minutes)."""
        handles, self._handles = self._handles, {}
        if handles:
            in_background(handles.clear)

    def pool(self, conn: libvirt.virConnect) -> libvirt.virStoragePool:
        """Corral's pool on this connection (in a worker thread). Ensuring it costs several
        RPCs; serial logs are polled many times a second, so the handle is kept per connection
        and re-ensured only when the pool stopped being active."""
        cached = self._handles.get(id(conn))
        if cached is not None and cached[0] is conn:
            with contextlib.suppress(libvirt.libvirtError):
                if cached[1].isActive():
                    return cached[1]
        if self._build:
            pool = _storage.ensure_pool(conn, self.pool_name, self.pool_dir)
        else:
            pool = _domain_pools.ensure_dir_pool(conn, self.pool_name, self.pool_dir)
        handles = dict(self._handles)
        handles[id(conn)] = (conn, pool)
        while len(handles) > MAX_HANDLES:  # connections of the call pool come and go
            del handles[next(iter(handles))]  # freed here, in a worker thread
        self._handles = handles
        return pool

    async def ensure_pool(self) -> None:
        await self._conn.run(f"prepare storage pool {self.pool_name}", self.pool)

    async def list_volumes(self) -> list[VolumeRef]:
        return await self._conn.run(
            f"list volumes of pool {self.pool_name}",
            lambda c: _storage.list_volumes(self.pool(c)),
        )

    async def create_blank_volume(
        self, name: str, size_bytes: int, fmt: str = "qcow2"
    ) -> VolumeRef:
        return await self._conn.run(
            f"create volume {name}",
            lambda c: _storage.create_blank(self.pool(c), name, size_bytes, fmt),
        )

    async def create_linked_clone(self, name: str, base: str) -> VolumeRef:
        return await self._conn.run(
            f"create volume {name} as a linked clone of {base}",
            lambda c: _storage.create_linked_clone(c, self.pool(c), name, base),
        )

    async def import_volume(
        self,
        name: str,
        source: Path,
        *,
        progress: Callable[[int, int], None],
        cancelled: Callable[[], bool],
    ) -> VolumeRef:
        """Upload ``source`` (a file where Corral runs) into a new volume; no overall timeout,
        progress is reported in the loop thread."""
        loop = asyncio.get_running_loop()

        def report(done: int, total: int) -> None:
            loop.call_soon_threadsafe(progress, done, total)

        return await self._conn.run(
            f"import {source} as volume {name}",
            lambda c: _transfer.upload(c, self.pool(c), name, source, report, cancelled),
            bounded=False,
        )

    async def pool_free_bytes(self) -> int:
        """Free space in Corral's pool (as of a refresh now)."""

        def job(conn: libvirt.virConnect) -> int:
            pool = self.pool(conn)
            _storage.refresh(pool)
            return int(pool.info()[3])

        return await self._conn.run(f"read the free space of pool {self.pool_name}", job)

    async def pool_size(self) -> tuple[int, int]:
        """(capacity, free) bytes of the pool's filesystem (as of a refresh now)."""

        def job(conn: libvirt.virConnect) -> tuple[int, int]:
            pool = self.pool(conn)
            _storage.refresh(pool)
            info = pool.info()
            return int(info[1]), int(info[3])

        return await self._conn.run(f"read the size of pool {self.pool_name}", job)

    async def open_upload(
        self, name: str, fmt: str, capacity_bytes: int, total_bytes: int
    ) -> VolumeWriter:
        """Create volume ``name`` (``fmt``, ``capacity_bytes`` as a guest sees it) to be filled
        with exactly ``total_bytes`` through the returned writer."""
        job = await self._conn.run(
            f"create volume {name} for an upload",
            lambda c: _transfer.VolumeUpload.create(
                c, self.pool(c), name, fmt, capacity_bytes, total_bytes
            ),
        )
        return VolumeWriter(self._conn, job, name)

    async def resize_volume(self, name: str, size_bytes: int) -> None:
        await self._conn.run(
            f"resize volume {name}",
            lambda c: _storage.lookup(self.pool(c), name).resize(size_bytes, 0),
        )

    async def delete_volume(self, name: str) -> None:
        await self._conn.run(
            f"delete volume {name}", lambda c: _storage.lookup(self.pool(c), name).delete(0)
        )

    async def find_volume(self, name: str) -> VolumeRef | None:
        def job(conn: libvirt.virConnect) -> VolumeRef | None:
            vol = _storage.find(self.pool(conn), name)
            return None if vol is None else _storage.volume_ref(vol)

        return await self._conn.run(f"look up volume {name}", job)

    async def checked_volume(self, name: str) -> VolumeRef | None:
        """Volume ``name`` if it may be handed to a guest (see ``_storage.checked_ref``:
        InvalidRequest if not); None when there is no such volume."""

        def job(conn: libvirt.virConnect) -> VolumeRef | None:
            pool = self.pool(conn)
            vol = _storage.find(pool, name)
            return None if vol is None else _storage.checked_ref(conn, pool, vol, f"volume {name}")

        return await self._conn.run(f"look up and check volume {name}", job)

    async def read_small(self, name: str, size: int) -> bytes | None:
        """The first ``size`` bytes of volume ``name``; None when there is no such volume."""
        return await self._conn.run(
            f"read volume {name} of pool {self.pool_name}",
            lambda c: _domain_pools.read_small(c, self.pool(c), name, size),
        )

    async def write_small(self, name: str, data: bytes) -> None:
        """Volume ``name`` holding ``data`` (a few bytes), replacing one of that name."""
        await self._conn.run(
            f"write volume {name} of pool {self.pool_name}",
            lambda c: _domain_pools.write_small(c, self.pool(c), name, data),
        )

    async def volume_exists(self, name: str) -> bool:
        return await self._conn.run(
            f"look up volume {name}", lambda c: _storage.exists(self.pool(c), name)
        )
