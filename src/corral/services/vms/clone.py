"""Linked clones: the source's disks become a shared read-only base under two overlays."""

from __future__ import annotations

import secrets
from typing import Any

from corral import store
from corral.errors import Conflict, CorralError
from corral.model.task import TaskInfo
from corral.model.vm import CloneRequest, VmState
from corral.services.principal import Principal
from corral.services.tasks import TaskContext
from corral.services.vms._use_case import TaskUseCase
from corral.services.vms._volumes import volume_name
from corral.virt import DomainRecord, LibvirtHost, VolumeRef


class VmCloning(TaskUseCase):
    async def clone(self, principal: Principal, name: str, req: CloneRequest) -> TaskInfo:
        _row, host, record = await self._inventory.record(name)
        self._inventory.hosts.for_new_vm(host.name)  # a clone is a new VM on the same host
        await self._check_clone(host, record, req)

        async def body(ctx: TaskContext) -> dict[str, Any]:
            async with self._locks.hold(name, "clone"), self._locks.hold(req.name, "clone"):
                await self._audit.outcome(
                    principal.user,
                    "vm.clone",
                    f"{name}->{req.name}",
                    lambda: self._clone(ctx, principal, host, record, req),
                )
            return {"vm": req.name, "source": name}

        # A taker finds out from the inventory whether the clone was made (recovery).
        params = {"source": name}
        return await self._tasks.start("vm.clone", req.name, principal, body, "checking", params)

    async def _check_clone(
        self, host: LibvirtHost, record: DomainRecord, req: CloneRequest
    ) -> None:
        if await self._inventory.db(lambda s: store.find_vm(s, req.name)) is not None:
            raise Conflict(f"a VM named {req.name!r} already exists; choose another name")
        await check_freezable(host, record, "a linked clone")

    async def _clone(
        self,
        ctx: TaskContext,
        principal: Principal,
        host: LibvirtHost,
        record: DomainRecord,
        req: CloneRequest,
    ) -> None:
        """The source's current volumes become read-only bases; source and clone each get a
        fresh qcow2 overlay on top, so neither can ever change what the other sees."""
        volumes = {v.path: v for v in await host.storage.list_volumes()}
        disks = [d for d in record.disks if d.device == "disk"]
        created: list[VolumeRef] = []
        clone_paths: dict[str, str] = {}
        source_paths: dict[str, str] = {}
        clone_record: DomainRecord | None = None
        suffix = secrets.token_hex(3)
        try:
            for index, disk in enumerate(disks):
                await ctx.progress(index / (len(disks) + 1), phase=f"overlays for {disk.target}")
                base = volumes[disk.path]
                stem = base.name.removesuffix(".qcow2")
                mine = await host.storage.create_linked_clone(f"{stem}.{suffix}.qcow2", base.name)
                created.append(mine)
                theirs = await host.storage.create_linked_clone(
                    volume_name(req.name, disk.target), base.name
                )
                created.append(theirs)
                source_paths[disk.target] = mine.path
                clone_paths[disk.target] = theirs.path
            await ctx.progress(phase="defining the clone", force=True)
            clone_record = await host.clone_domain(
                record.uuid, req.name, clone_paths, req.description
            )
            await host.set_disk_sources(record.uuid, source_paths)
            await self._inventory.db(
                lambda s: store.add_vm(
                    s,
                    uuid=clone_record.uuid if clone_record else "",
                    name=req.name,
                    host=host.name,
                    created_by=principal.user,
                    description=clone_record.description if clone_record else "",
                    accelerator=record.accelerator,
                )
            )
        except BaseException:
            await self._undo_clone(host, record, volumes, disks, clone_record, created)
            raise

    @staticmethod
    async def _undo_clone(
        host: LibvirtHost,
        record: DomainRecord,
        volumes: dict[str, VolumeRef],
        disks: list[Any],
        clone_record: DomainRecord | None,
        created: list[VolumeRef],
    ) -> None:
        restore = (record.uuid, {d.target: d.path for d in disks})
        await undo_made(host, "clone", created, restore=restore, defined=clone_record)


async def undo_made(
    host: LibvirtHost,
    what: str,
    created: list[VolumeRef],
    *,
    restore: tuple[str, dict[str, str]] | None = None,
    defined: DomainRecord | None = None,
) -> None:
    """Take back what a clone, a template or a VM from a template made: point the source
    (``restore``: its UUID and disk paths) back at its own volumes, undefine the domain made,
    delete the volumes made (newest first). Raises when that stops half-way, naming ``what``."""
    try:
        if restore is not None:
            await host.set_disk_sources(*restore)
        if defined is not None:
            await host.undefine_domain(defined.uuid)
        for vol in reversed(created):
            await host.storage.delete_volume(vol.name)
    except CorralError as exc:
        raise CorralError(f"{what} rollback incomplete: {exc.message}") from exc


async def check_freezable(host: LibvirtHost, record: DomainRecord, what: str) -> None:
    """Whether the VM's disks may become read-only bases (for ``what``: a linked clone, a
    template): shut off, no internal snapshots, every disk a volume of Corral's pool."""
    if record.state != VmState.SHUTOFF:
        raise Conflict(
            f"VM {record.name!r} is {record.state.value}: {what} needs a shut-off source, "
            "shut it down first"
        )
    if snapshots := await host.list_snapshots(record.uuid):
        names = ", ".join(s.name for s in snapshots)
        raise Conflict(
            f"VM {record.name!r} has snapshots ({names}); {what} freezes its disks as a shared "
            "base, which its internal snapshots cannot follow: delete them first "
            f"(`corral vm snapshot delete {record.name} {snapshots[0].name}`, "
            f"DELETE /api/v1/vms/{record.name}/snapshots/{snapshots[0].name})"
        )
    pool = {v.path for v in await host.storage.list_volumes()}
    for disk in record.disks:
        if disk.device == "disk" and disk.path not in pool:
            raise Conflict(
                f"disk {disk.target} of VM {record.name!r} ({disk.path}) is not in Corral's "
                f"storage pool on {host.name}; {what} needs pool volumes (a disk on a storage "
                "domain cannot be frozen yet)"
            )
