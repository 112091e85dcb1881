"""``local``: each host's own Corral pool (``host.storage``), reached by that host alone."""

from __future__ import annotations

from collections.abc import Sequence

from corral.errors import CorralError
from corral.model.storage_domain import (
    DiskSource,
    OperationSupport,
    StorageDomainKind,
    VolumeOperation,
)
from corral.services.storage.driver import (
    DomainConfig,
    DriverContext,
    ImageWriter,
    ReachResult,
    operation,
)
from corral.services.storage.registry import register
from corral.virt import LibvirtHost, VolumeRef


class LocalDriver:
    def __init__(self, config: DomainConfig, context: DriverContext) -> None:
        self.config = config
        self._context = context

    def operations(self) -> list[OperationSupport]:
        return [operation(op) for op in VolumeOperation]

    async def check(self, hosts: Sequence[LibvirtHost], *, full: bool) -> list[ReachResult]:
        return [await self._check_one(host) for host in hosts]

    @staticmethod
    async def _check_one(host: LibvirtHost) -> ReachResult:
        try:
            await host.storage.ensure_pool()
            capacity, free = await host.storage.pool_size()
        except CorralError as exc:
            return ReachResult(host.name, False, exc.message)
        return ReachResult(host.name, True, capacity_bytes=capacity, free_bytes=free)

    async def forget(self, host: LibvirtHost) -> None:
        """Each host's pool stays: it is Corral's own."""

    async def list_volumes(self, host: LibvirtHost) -> list[VolumeRef]:
        return await host.storage.list_volumes()

    async def free_bytes(self, host: LibvirtHost) -> int:
        return await host.storage.pool_free_bytes()

    async def create_volume(self, host: LibvirtHost, name: str, size_bytes: int) -> VolumeRef:
        return await host.storage.create_blank_volume(name, size_bytes)

    async def create_linked_clone(self, host: LibvirtHost, name: str, base: str) -> VolumeRef:
        return await host.storage.create_linked_clone(name, base)

    async def resize_volume(self, host: LibvirtHost, name: str, size_bytes: int) -> None:
        await host.storage.resize_volume(name, size_bytes)

    async def delete_volume(self, host: LibvirtHost, name: str) -> None:
        await host.storage.delete_volume(name)

    async def open_upload(
        self, host: LibvirtHost, name: str, fmt: str, capacity_bytes: int, total_bytes: int
    ) -> ImageWriter:
        return await host.storage.open_upload(name, fmt, capacity_bytes, total_bytes)

    def disk_source(self, host: LibvirtHost, volume: VolumeRef) -> DiskSource:
        return DiskSource(file=volume.path, format=volume.format)

    def holds(self, disk_path: str) -> bool:
        # Which host's pool: the caller asks per host; the pool directory is the same setting.
        return False


register(StorageDomainKind.LOCAL, LocalDriver)
