"""``HostBackups``: the async face of :mod:`corral.virt._backup` for one host
(``host.backups``). Backup files are written as volumes of the host's own pool (named
``.backup-…``), read back through libvirt's volume download, and deleted."""

from __future__ import annotations

import libvirt

from corral.virt import _backup, _storage
from corral.virt._backup import BackupJob
from corral.virt._connection import ManagedConnection
from corral.virt._lookup import lookup
from corral.virt.storage import PoolStorage

__all__ = ["BackupJob", "HostBackups"]


class HostBackups:
    def __init__(self, conn: ManagedConnection, storage: PoolStorage) -> None:
        self._conn = conn
        self._storage = storage

    def file_path(self, stem: str, target: str) -> str:
        return f"{self._storage.pool_dir}/.backup-{stem}-{target}.qcow2"

    async def begin(
        self,
        uuid: str,
        files: dict[str, str],
        skip: list[str],
        incremental: str | None,
        checkpoint: str | None,
    ) -> None:
        """Start writing each disk (target -> file) of the running (or paused) domain;
        ``incremental``: only what changed since that checkpoint; ``checkpoint``: the new
        one to make at this point."""
        backup = _backup.backup_xml(files, skip, incremental)
        mark = _backup.checkpoint_xml(checkpoint, list(files), skip) if checkpoint else None
        await self._conn.run(
            f"start a backup of domain {uuid}",
            lambda c: _backup.begin(lookup(c, uuid), backup, mark),
        )

    async def start_paused(self, uuid: str) -> None:
        """Start a shut-off domain without running its guest (for a backup)."""
        await self._conn.run(
            f"start domain {uuid} paused",
            lambda c: lookup(c, uuid).createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED),
        )

    async def job(self, uuid: str) -> BackupJob:
        return await self._conn.run(
            f"read the backup job of domain {uuid}", lambda c: _backup.job(lookup(c, uuid))
        )

    async def abort(self, uuid: str) -> None:
        await self._conn.run(
            f"stop the backup job of domain {uuid}", lambda c: _backup.abort(lookup(c, uuid))
        )

    async def checkpoints(self, uuid: str) -> list[str]:
        return await self._conn.run(
            f"list the checkpoints of domain {uuid}",
            lambda c: _backup.checkpoints(lookup(c, uuid)),
        )

    async def delete_checkpoint(self, uuid: str, name: str) -> None:
        await self._conn.run(
            f"delete checkpoint {name} of domain {uuid}",
            lambda c: _backup.delete_checkpoint(lookup(c, uuid), name),
        )

    async def refresh(self) -> None:
        await self._conn.run(
            "refresh Corral's pool", lambda c: _storage.refresh(self._storage.pool(c))
        )

    async def read(self, path: str, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` of a backup file."""
        return await self._conn.run(
            f"read backup file {path}", lambda c: _backup.read_file(c, path, offset, length)
        )

    async def write(self, path: str, offset: int, data: bytes) -> None:
        """``data`` at ``offset`` of a volume file (a restore's)."""
        await self._conn.run(
            f"write into {path}", lambda c: _backup.write_file(c, path, offset, data)
        )

    async def delete_file(self, path: str) -> None:
        def job(c: libvirt.virConnect) -> None:
            _storage.refresh(self._storage.pool(c))
            try:
                c.storageVolLookupByPath(path).delete(0)
            except libvirt.libvirtError as err:
                if err.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                    raise

        await self._conn.run(f"delete backup file {path}", job)
