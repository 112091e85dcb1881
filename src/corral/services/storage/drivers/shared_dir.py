"""``shared-dir``: a directory the administrator mounted at the same path on every host (NFS,
CephFS…), a libvirt directory pool on each.

Reach is proved with a marker file: a volume holding the domain's random token, written through
one host's pool; a host reaches the domain when its pool at that path shows the same token. A
host where the path is missing, another filesystem (the token is absent) or another domain's
directory (another token) does not, and its pool is undefined again.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Sequence

from corral.errors import Conflict, CorralError
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
from corral.virt.domain_pools import POOL_PREFIX
from corral.virt.storage import PoolStorage

#: The marker volume in each shared directory (listed by no volume listing).
MARKER = "corral-domain-marker"
_TOKEN_BYTES = 64


def pool_name(domain: str) -> str:
    """The libvirt pool of domain ``domain`` on each host."""
    return f"{POOL_PREFIX}{domain}"


class SharedDirDriver:
    def __init__(self, config: DomainConfig, context: DriverContext) -> None:
        self.config = config
        self.path = posixpath.normpath(config.settings["path"])
        self._token = (config.marker or "").encode()

    def operations(self) -> list[OperationSupport]:
        # Uploads (the image library's) stream into the domain's pool on a reaching host.
        return [operation(op) for op in VolumeOperation]

    def _pool(self, host: LibvirtHost) -> PoolStorage:
        return host.domain_pools.pool(pool_name(self.config.name), self.path)

    # -- reach -------------------------------------------------------------------------------
    async def check(self, hosts: Sequence[LibvirtHost], *, full: bool) -> list[ReachResult]:
        failed: dict[str, str] = {}
        started = []
        for host in hosts:
            try:
                await self._pool(host).ensure_pool()
            except CorralError as exc:
                failed[host.name] = f"cannot use {self.path} on this host: {exc.message}"
                continue
            started.append(host)
        seen = {h.name: await self._read_marker(h) for h in started}
        writer = None
        if full and started and self._token not in seen.values():
            writer = started[0]
            try:
                await self._pool(writer).write_small(MARKER, self._token)
            except CorralError as exc:
                failed[writer.name] = (
                    f"cannot write the marker file into {self.path}: {exc.message}"
                )
            seen = {h.name: await self._read_marker(h) for h in started}
        results = []
        for host in hosts:
            reason = failed.get(host.name) or self._refusal(seen[host.name], writer)
            results.append(await self._verdict(host, reason))
        return results

    async def _read_marker(self, host: LibvirtHost) -> bytes | None:
        try:
            return await self._pool(host).read_small(MARKER, _TOKEN_BYTES)
        except CorralError:
            return None

    def _refusal(self, seen: bytes | None, writer: LibvirtHost | None) -> str | None:
        if seen == self._token:
            return None
        where = f"through host {writer.name}" if writer else "by Corral"
        if seen is None:
            return (
                f"the marker file written {where} is not in {self.path} here: the directory is "
                "not the filesystem the other hosts share (mount it there, then check again)"
            )
        return (
            f"{self.path} here holds another marker than the one written {where}: it is "
            "another filesystem or another domain's directory"
        )

    async def _verdict(self, host: LibvirtHost, reason: str | None) -> ReachResult:
        if reason is not None:
            await self._forget_quietly(host)
            return ReachResult(host.name, False, reason)
        try:
            capacity, free = await self._pool(host).pool_size()
        except CorralError as exc:
            await self._forget_quietly(host)
            return ReachResult(host.name, False, exc.message)
        return ReachResult(host.name, True, capacity_bytes=capacity, free_bytes=free)

    async def _forget_quietly(self, host: LibvirtHost) -> None:
        # The host's reach is recorded as lost either way; a stale pool is harmless.
        with contextlib.suppress(CorralError):
            await self.forget(host)

    async def forget(self, host: LibvirtHost) -> None:
        await host.domain_pools.forget(pool_name(self.config.name))

    # -- volumes -----------------------------------------------------------------------------
    async def list_volumes(self, host: LibvirtHost) -> list[VolumeRef]:
        return [v for v in await self._pool(host).list_volumes() if v.name != MARKER]

    async def free_bytes(self, host: LibvirtHost) -> int:
        return await self._pool(host).pool_free_bytes()

    async def create_volume(self, host: LibvirtHost, name: str, size_bytes: int) -> VolumeRef:
        self._not_marker(name)
        return await self._pool(host).create_blank_volume(name, size_bytes)

    async def create_linked_clone(self, host: LibvirtHost, name: str, base: str) -> VolumeRef:
        self._not_marker(name)
        return await self._pool(host).create_linked_clone(name, base)

    async def resize_volume(self, host: LibvirtHost, name: str, size_bytes: int) -> None:
        self._not_marker(name)
        await self._pool(host).resize_volume(name, size_bytes)

    async def delete_volume(self, host: LibvirtHost, name: str) -> None:
        self._not_marker(name)
        await self._pool(host).delete_volume(name)

    async def open_upload(
        self, host: LibvirtHost, name: str, fmt: str, capacity_bytes: int, total_bytes: int
    ) -> ImageWriter:
        self._not_marker(name)
        return await self._pool(host).open_upload(name, fmt, capacity_bytes, total_bytes)

    def _not_marker(self, name: str) -> None:
        if name == MARKER:
            raise Conflict(
                f"{MARKER} is the domain's marker file (proof of a shared filesystem): "
                "choose another volume name"
            )

    def disk_source(self, host: LibvirtHost, volume: VolumeRef) -> DiskSource:
        return DiskSource(file=volume.path, format=volume.format)

    def holds(self, disk_path: str) -> bool:
        return posixpath.dirname(posixpath.normpath(disk_path)) == self.path


register(StorageDomainKind.SHARED_DIR, SharedDirDriver)


async def forget_strays(host: LibvirtHost, domains: set[str]) -> list[str]:
    """Undefine the pools of shared-dir domains on ``host`` that are not in ``domains`` (one
    deleted while the host was down); their files stay. Returns the pools undefined."""
    keep = {pool_name(name) for name in domains}
    strays = [name for name in await host.domain_pools.names() if name not in keep]
    for name in strays:
        await host.domain_pools.forget(name)
    return strays
