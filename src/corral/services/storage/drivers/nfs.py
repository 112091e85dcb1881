"""``nfs``: an NFS export QEMU reaches with its own client (libnfs; no kernel mount on the
hosts). There is no libvirt pool for it without a mount, so reach checks and volume work run
through the host agent's ``nfs.*`` ops on a host that reaches the export; guests open volumes
as network disks (``nfs://SERVER/EXPORT/NAME``). Volumes are the files in the export's top
directory (qcow2 made by Corral, or any image put there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from corral.errors import Conflict, CorralError, NotFound
from corral.model.storage_domain import (
    DiskSource,
    NetworkHost,
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
from corral.virt.domain_xml.disk import NetworkSource, network_source

#: The agent's own calls are bounded (15 s per NFS call); this covers SSH and a slow host.
AGENT_TIMEOUT_S = 60.0
_WHY_NOT = {
    VolumeOperation.SNAPSHOT: "libvirt 9.0 takes internal snapshots of file disks only, not of "
    "network disks",
}


class _AgentWriter:
    """An upload streamed to the host agent's ``nfs.write`` (``AgentStream``)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    @property
    def done(self) -> int:
        return int(self._stream.done)

    async def write(self, data: bytes) -> None:
        await self._stream.write(data)

    async def finish(self) -> object:
        return await self._stream.finish()

    async def abort(self) -> None:
        await self._stream.abort()


class NfsDriver:
    def __init__(self, config: DomainConfig, context: DriverContext) -> None:
        self.config = config
        self._context = context
        self.server = config.settings["server"]
        self.export = config.settings["export"].rstrip("/") or "/"

    def operations(self) -> list[OperationSupport]:
        return [operation(op, _WHY_NOT.get(op)) for op in VolumeOperation]

    async def _call(self, host: LibvirtHost, op: str, **args: Any) -> dict[str, Any]:
        if self._context.agent is None:
            raise Conflict("this Corral has no host agent service: nfs domains need it")
        place = {"server": self.server, "export": self.export}
        return await self._context.agent(host.name, op, place | args, timeout_s=AGENT_TIMEOUT_S)

    async def check(self, hosts: Sequence[LibvirtHost], *, full: bool = True) -> list[ReachResult]:
        """Each host mounts the export with QEMU's NFS client and makes and removes a
        directory in it (root must write: QEMU does). All hosts at once."""
        return list(await asyncio.gather(*(self._check_one(host) for host in hosts)))

    async def _check_one(self, host: LibvirtHost) -> ReachResult:
        try:
            size = await self._call(host, "nfs.check")
        except CorralError as exc:
            return ReachResult(host.name, False, exc.message)
        return ReachResult(
            host.name,
            True,
            capacity_bytes=int(size["capacity_bytes"]),
            free_bytes=int(size["free_bytes"]),
        )

    async def forget(self, host: LibvirtHost) -> None:
        """Nothing was realised on the host (no pool, no mount)."""

    def _ref(self, entry: dict[str, Any]) -> VolumeRef:
        name = str(entry["name"])
        backing = entry.get("backing")
        return VolumeRef(
            name=name,
            path=self.url(name),
            format=str(entry.get("format") or "raw"),
            capacity_bytes=int(entry["capacity_bytes"]),
            # Corral's clones name their base by URL (= its path); a bare name is a sibling.
            backing=self.url(str(backing)) if backing and "/" not in str(backing) else backing,
            allocation_bytes=int(entry.get("allocation_bytes") or 0),
        )

    def url(self, name: str) -> str:
        return NetworkSource("nfs", f"{self.export.rstrip('/')}/{name}", self.server).url

    async def list_volumes(self, host: LibvirtHost) -> list[VolumeRef]:
        listed = await self._call(host, "nfs.list")
        return [self._ref(v) for v in listed["volumes"]]

    async def free_bytes(self, host: LibvirtHost) -> int:
        return int((await self._call(host, "nfs.check"))["free_bytes"])

    async def _names(self, host: LibvirtHost) -> set[str]:
        return {v.name for v in await self.list_volumes(host)}

    async def create_volume(self, host: LibvirtHost, name: str, size_bytes: int) -> VolumeRef:
        if name in await self._names(host):
            raise Conflict(f"storage domain {self.config.name} already has a volume {name}")
        return self._ref(await self._call(host, "nfs.create", name=name, size_bytes=size_bytes))

    async def create_linked_clone(self, host: LibvirtHost, name: str, base: str) -> VolumeRef:
        names = await self._names(host)
        if name in names:
            raise Conflict(f"storage domain {self.config.name} already has a volume {name}")
        if base not in names:
            raise NotFound(f"storage domain {self.config.name} has no volume {base}")
        return self._ref(await self._call(host, "nfs.clone", name=name, base=base))

    async def resize_volume(self, host: LibvirtHost, name: str, size_bytes: int) -> None:
        await self._existing(host, name)
        await self._call(host, "nfs.resize", name=name, size_bytes=size_bytes)

    async def delete_volume(self, host: LibvirtHost, name: str) -> None:
        await self._existing(host, name)
        await self._call(host, "nfs.delete", name=name)

    async def open_upload(
        self, host: LibvirtHost, name: str, fmt: str, capacity_bytes: int, total_bytes: int
    ) -> ImageWriter:
        """The bytes stream through the agent into the export (no libvirt pool for nfs, and
        nothing staged on the host's disk); the file appears under ``name`` once complete."""
        if self._context.agent_stream is None:
            raise Conflict("this Corral has no host agent service: nfs domains need it")
        if name in await self._names(host):
            raise Conflict(f"storage domain {self.config.name} already has a volume {name}")
        args = {"server": self.server, "export": self.export, "name": name,
                "size_bytes": total_bytes}  # fmt: skip
        stream = await self._context.agent_stream(
            host.name, "nfs.write", args, timeout_s=AGENT_TIMEOUT_S
        )
        return _AgentWriter(stream)

    async def _existing(self, host: LibvirtHost, name: str) -> None:
        if name not in await self._names(host):
            raise NotFound(f"storage domain {self.config.name} has no volume {name}")

    def disk_source(self, host: LibvirtHost, volume: VolumeRef) -> DiskSource:
        source = network_source(volume.path)
        if source is None or not self.holds(volume.path):
            raise NotFound(f"{volume.name} is not a volume of storage domain {self.config.name}")
        return DiskSource(
            protocol="nfs",
            name=source.name,
            hosts=(NetworkHost(source.host),),
            format=volume.format,
        )

    def holds(self, disk_path: str) -> bool:
        source = network_source(disk_path)
        return (
            source is not None
            and source.protocol == "nfs"
            and source.host == self.server
            and source.name.rpartition("/")[0] == self.export.rstrip("/")
        )


register(StorageDomainKind.NFS, NfsDriver)
