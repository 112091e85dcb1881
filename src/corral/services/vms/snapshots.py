"""Internal snapshots of a VM: list, create, revert, delete (one at a time per VM)."""

from __future__ import annotations

from corral.errors import Conflict
from corral.model.vm import SnapshotInfo, SnapshotRequest, VmInfo
from corral.services.locks import OperationLocks
from corral.services.principal import Principal
from corral.services.vms.inventory import VmInventory


class VmSnapshots:
    def __init__(self, inventory: VmInventory, locks: OperationLocks) -> None:
        self._inventory = inventory
        self._locks = locks

    async def list_snapshots(self, name: str) -> list[SnapshotInfo]:
        _row, host, record = await self._inventory.record(name)
        return await host.list_snapshots(record.uuid)

    async def create(self, principal: Principal, name: str, req: SnapshotRequest) -> SnapshotInfo:
        async with self._locks.hold(name, "snapshot"):
            _row, host, record = await self._inventory.record(name)
            if any(s.name == req.name for s in await host.list_snapshots(record.uuid)):
                raise Conflict(
                    f"VM {name!r} already has a snapshot named {req.name!r}: choose another name, "
                    f"or delete it first (`corral vm snapshot delete {name} {req.name}`)"
                )
            return await host.create_snapshot(record.uuid, req.name, req.description)

    async def revert(self, principal: Principal, name: str, snap: str) -> VmInfo:
        async with self._locks.hold(name, "snapshot revert"):
            _row, host, record = await self._inventory.record(name)
            await host.revert_snapshot(record.uuid, snap)
        return await self._inventory.get(name)

    async def delete(self, principal: Principal, name: str, snap: str) -> None:
        async with self._locks.hold(name, "snapshot delete"):
            _row, host, record = await self._inventory.record(name)
            await host.delete_snapshot(record.uuid, snap)
