"""``DomainVolumes``: the volumes of a storage domain — list, create (blank), resize, delete.

``local`` volumes are per host (each host's pool: ``host`` names it); a shared domain's are
the same on every host that reaches it, listed and changed through one of them, with users
counted on every connected host.
"""

from __future__ import annotations

from corral.errors import Conflict, InsufficientResources, NotFound
from corral.model.storage_domain import (
    LOCAL_DOMAIN,
    DomainVolumeCreate,
    DomainVolumeResize,
    ReachState,
    VolumeOperation,
)
from corral.model.volume import VolumeInfo
from corral.services.hosts import HostService
from corral.services.storage.domains import StorageDomains
from corral.services.storage.driver import DomainConfig, StorageDriver
from corral.services.volumes import refusal, volume_infos
from corral.virt import LibvirtHost

GIB = 2**30


def _bytes(gib: float) -> int:
    return int(gib * GIB)


def _refuse_unsupported(config: DomainConfig, driver: StorageDriver, op: VolumeOperation) -> None:
    """Conflict with the kind's own reason (e.g. an iSCSI domain's LUNs are made on the
    target) before anything else is asked of the domain."""
    for support in driver.operations():
        if support.operation is op and not support.supported:
            raise Conflict(f"storage domain {config.name} ({config.kind.value}): {support.reason}")


class DomainVolumes:
    def __init__(self, domains: StorageDomains, hosts: HostService) -> None:
        self._domains = domains
        self._hosts = hosts

    async def host_for(self, config: DomainConfig, wanted: str | None) -> LibvirtHost:
        """The host to reach ``config``'s volumes through: ``wanted`` (local: the pool's
        host, default the first host), else the first connected host that reaches it."""
        if config.name == LOCAL_DOMAIN:
            return (
                self._hosts.connected(wanted)
                if wanted
                else self._hosts.connected(self._hosts.get().name)
            )
        reach = await self._domains.reach(config.name)
        if wanted is not None:
            if reach.get(wanted) is not ReachState.REACHABLE:
                raise Conflict(f"host {wanted} does not reach storage domain {config.name}")
            return self._hosts.connected(wanted)
        for host in self._hosts.all():
            if host.connected and reach.get(host.name) is ReachState.REACHABLE:
                return host
        raise Conflict(
            f"no connected host reaches storage domain {config.name}: "
            f"`corral storage-domain check {config.name}` checks again"
        )

    async def _users(self, config: DomainConfig, host: LibvirtHost) -> dict[str, set[str]]:
        if config.name == LOCAL_DOMAIN:
            return await host.disk_users()
        merged: dict[str, set[str]] = {}
        for other in self._hosts.all():
            if other.connected:
                for path, vms in (await other.disk_users()).items():
                    merged.setdefault(path, set()).update(vms)
        return merged

    async def _listed(
        self, config: DomainConfig, driver: StorageDriver, host: LibvirtHost
    ) -> list[VolumeInfo]:
        volumes = await driver.list_volumes(host)
        return volume_infos(volumes, await self._users(config, host), host.name, config.name)

    async def list_volumes(self, domain: str, host: str | None = None) -> list[VolumeInfo]:
        """The domain's volumes (local: every connected host's, or ``host``'s)."""
        config = await self._domains.config(domain)
        driver = self._domains.driver(config)
        if config.name == LOCAL_DOMAIN and host is None:
            result: list[VolumeInfo] = []
            for each in self._hosts.all():
                if each.connected:
                    result.extend(await self._listed(config, driver, each))
            return result
        return await self._listed(config, driver, await self.host_for(config, host))

    async def _find(
        self, config: DomainConfig, driver: StorageDriver, host: LibvirtHost, name: str
    ) -> VolumeInfo:
        found = [v for v in await self._listed(config, driver, host) if v.name == name]
        if not found:
            raise NotFound(
                f"no volume {name!r} in storage domain {config.name}: "
                f"`corral volume list --domain {config.name}` shows them"
            )
        return found[0]

    async def create(self, domain: str, request: DomainVolumeCreate) -> VolumeInfo:
        """A blank qcow2 volume; InsufficientResources when it is larger than the free space."""
        config = await self._domains.config(domain)
        driver = self._domains.driver(config)
        _refuse_unsupported(config, driver, VolumeOperation.CREATE_VOLUME)
        host = await self.host_for(config, request.host)
        size = _bytes(request.size_gib)
        free = await driver.free_bytes(host)
        if size > free:
            raise InsufficientResources(
                f"storage domain {domain} has {free} bytes ({free / GIB:.1f} GiB) free, volume "
                f"{request.name} needs {size} bytes ({size / GIB:.1f} GiB): free space or "
                "choose a smaller size"
            )
        await driver.create_volume(host, request.name, size)
        return await self._find(config, driver, host, request.name)

    async def resize(self, domain: str, name: str, request: DomainVolumeResize) -> VolumeInfo:
        """Grow a volume no VM uses."""
        config = await self._domains.config(domain)
        driver = self._domains.driver(config)
        _refuse_unsupported(config, driver, VolumeOperation.RESIZE_VOLUME)
        host = await self.host_for(config, request.host)
        volume = await self._find(config, driver, host, name)
        size = _bytes(request.size_gib)
        if volume.used_by:
            raise Conflict(
                f"volume {name} is used by VM(s) {', '.join(volume.used_by)}: a volume in use "
                "is not resized behind its VM's back"
            )
        if size < volume.capacity_bytes:
            raise Conflict(
                f"volume {name} has {volume.capacity_bytes} bytes, {size} would shrink it: "
                "volumes only grow"
            )
        await driver.resize_volume(host, name, size)
        return await self._find(config, driver, host, name)

    async def delete(self, domain: str, name: str, host: str | None = None) -> VolumeInfo:
        """Delete a volume nothing uses (see ``corral.services.volumes.refusal``)."""
        config = await self._domains.config(domain)
        driver = self._domains.driver(config)
        through = await self.host_for(config, host)
        volume = await self._find(config, driver, through, name)
        why = refusal(volume)
        if why is not None:
            raise Conflict(why)
        await driver.delete_volume(through, name)
        return volume
