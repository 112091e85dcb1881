"""``iscsi``: an iSCSI target reached through libvirt ``iscsi-direct`` pools on each host
(libiscsi inside libvirtd and QEMU: no kernel initiator). The target's LUNs are the volumes,
named ``lun-N``; guests open them as network disks (``iscsi://HOST:PORT/IQN/N``). LUNs are made,
resized and removed on the target, not through Corral: those operations are refused, saying so.

Each host logs in as ``INITIATOR_PREFIX:HOST`` (a target's ACL can name it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from corral.errors import Conflict, CorralError, NotFound
from corral.model.storage_domain import (
    DiskSource,
    NetworkHost,
    OperationSupport,
    StorageDomainKind,
    VolumeOperation,
)
from corral.services.storage.driver import DomainConfig, DriverContext, ReachResult, operation
from corral.services.storage.registry import register
from corral.virt import LibvirtHost, VolumeRef
from corral.virt.domain_xml.disk import NetworkSource, network_source
from corral.virt.iscsi_pools import IscsiTarget, Lun

DEFAULT_PORT = 3260
#: Each host's initiator name is this plus ``:HOST``.
INITIATOR_PREFIX = "iqn.2026-12.local.corral"
ON_THE_TARGET = "an iSCSI domain's volumes are the target's LUNs: they are {} on the target"
_WHY_NOT = {
    VolumeOperation.CREATE_VOLUME: ON_THE_TARGET.format("made"),
    VolumeOperation.RESIZE_VOLUME: ON_THE_TARGET.format("resized"),
    VolumeOperation.DELETE_VOLUME: ON_THE_TARGET.format("removed"),
    VolumeOperation.LINKED_CLONE: "a LUN is a raw block device: it cannot stand on another",
    VolumeOperation.SNAPSHOT: "a LUN is a raw block device: it has no internal snapshots",
    VolumeOperation.UPLOAD: "images are not kept on iscsi domains: LUNs are made on the "
    "target, and a LUN holds one disk, not a library of files (upload to a local, "
    "shared-dir or nfs domain)",
}


def split_portal(portal: str) -> tuple[str, int]:
    """``host[:port]`` (IPv6 in brackets) → (host, port), port 3260 when left out."""
    host, sep, port = portal.rpartition(":")
    if sep and port.isdigit() and (not host.startswith("[") or host.endswith("]")):
        return host, int(port)
    return portal, DEFAULT_PORT


def initiator_for(host_name: str) -> str:
    return f"{INITIATOR_PREFIX}:{host_name}"


class IscsiDriver:
    def __init__(self, config: DomainConfig, context: DriverContext) -> None:
        self.config = config
        self._context = context
        self.server, self.port = split_portal(config.settings["portal"])
        self.target = config.settings["target"]
        self.pool_name = f"corral-iscsi-{config.name}"

    def _where(self, host: LibvirtHost) -> IscsiTarget:
        return IscsiTarget(self.server, self.port, self.target, initiator_for(host.name))

    def operations(self) -> list[OperationSupport]:
        return [operation(op, _WHY_NOT.get(op)) for op in VolumeOperation]

    async def check(self, hosts: Sequence[LibvirtHost], *, full: bool = True) -> list[ReachResult]:
        """Log each host in to the target (its pool); a host that cannot keeps no pool. Hosts
        are checked at once: a portal that does not answer costs each one ≈ 3 s."""
        return list(await asyncio.gather(*(self._check_one(host) for host in hosts)))

    async def _check_one(self, host: LibvirtHost) -> ReachResult:
        try:
            capacity = await host.iscsi_pools.ensure(self.pool_name, self._where(host))
        except CorralError as exc:
            return ReachResult(host.name, False, " ".join(exc.message.split()))
        return ReachResult(host.name, True, capacity_bytes=capacity, free_bytes=0)

    async def forget(self, host: LibvirtHost) -> None:
        await host.iscsi_pools.forget(self.pool_name)

    def _volume(self, lun: Lun) -> VolumeRef:
        source = NetworkSource("iscsi", f"{self.target}/{lun.number}", self.server, self.port)
        return VolumeRef(
            name=f"lun-{lun.number}",
            path=source.url,
            format="raw",
            capacity_bytes=lun.capacity_bytes,
            allocation_bytes=lun.capacity_bytes,
        )

    async def list_volumes(self, host: LibvirtHost) -> list[VolumeRef]:
        luns = await host.iscsi_pools.luns(self.pool_name, self._where(host))
        return [self._volume(lun) for lun in luns]

    async def free_bytes(self, host: LibvirtHost) -> int:
        return 0  # nothing can be made in it through Corral

    def _refuse(self, op: VolumeOperation) -> Conflict:
        return Conflict(f"storage domain {self.config.name} is iSCSI: {_WHY_NOT[op]}")

    async def create_volume(self, host: LibvirtHost, name: str, size_bytes: int) -> VolumeRef:
        raise self._refuse(VolumeOperation.CREATE_VOLUME)

    async def create_linked_clone(self, host: LibvirtHost, name: str, base: str) -> VolumeRef:
        raise self._refuse(VolumeOperation.LINKED_CLONE)

    async def resize_volume(self, host: LibvirtHost, name: str, size_bytes: int) -> None:
        raise self._refuse(VolumeOperation.RESIZE_VOLUME)

    async def delete_volume(self, host: LibvirtHost, name: str) -> None:
        raise self._refuse(VolumeOperation.DELETE_VOLUME)

    async def volume(self, host: LibvirtHost, name: str) -> VolumeRef:
        """LUN ``name`` (``lun-N``), or NotFound naming the LUNs there are."""
        volumes = await self.list_volumes(host)
        for vol in volumes:
            if vol.name == name:
                return vol
        names = ", ".join(v.name for v in volumes) or "none"
        raise NotFound(f"storage domain {self.config.name} has no volume {name} (LUNs: {names})")

    def disk_source(self, host: LibvirtHost, volume: VolumeRef) -> DiskSource:
        source = network_source(volume.path)
        if source is None or source.protocol != "iscsi":
            raise NotFound(f"{volume.name} is not a LUN of storage domain {self.config.name}")
        return DiskSource(
            protocol="iscsi",
            name=source.name,
            hosts=(NetworkHost(source.host, source.port),),
            initiator_iqn=initiator_for(host.name),
            format="raw",
        )

    def holds(self, disk_path: str) -> bool:
        source = network_source(disk_path)
        return (
            source is not None
            and source.protocol == "iscsi"
            and source.host == self.server
            and source.name.rpartition("/")[0] == self.target
        )


register(StorageDomainKind.ISCSI, IscsiDriver)
