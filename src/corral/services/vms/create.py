"""Creating a VM: at once when nothing is imported, else as a task with progress."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from corral.errors import CorralError
from corral.model.task import TaskInfo
from corral.model.vm import VmInfo, VmSpec
from corral.services.audit import AuditService
from corral.services.images import ImageLibrary
from corral.services.locks import OperationLocks
from corral.services.principal import Principal
from corral.services.tasks import TaskContext, TaskService
from corral.services.vms import _provision
from corral.services.vms._use_case import TaskUseCase
from corral.services.vms.inventory import VmInventory
from corral.virt import LibvirtHost


class VmCreation(TaskUseCase):
    def __init__(
        self,
        inventory: VmInventory,
        tasks: TaskService,
        audit: AuditService,
        locks: OperationLocks,
        images: ImageLibrary,
    ) -> None:
        super().__init__(inventory, tasks, audit, locks)
        self._images = images
        #: Where a VM without a host goes (the placement policy); None: the first usable host.
        self.choose_host: Callable[[VmSpec], Awaitable[str | None]] | None = None

    async def create(self, principal: Principal, spec: VmSpec) -> VmInfo | TaskInfo:
        hosts = self._inventory.hosts
        target = spec.host
        if target is None and self.choose_host is not None:
            target = await self.choose_host(spec)
        host = hosts.for_new_vm(target)
        checked = await _provision.validate(self._inventory.db, host, spec)
        if checked.cdrom is not None and not checked.cdrom.startswith("/"):
            iso = await self._images.iso_for(host, checked.cdrom, vm=checked.name)
            checked = checked.model_copy(update={"cdrom": iso.path})
        if any(d.import_path for d in checked.disks):
            return await self._create_task(principal, host, checked)
        async with self._locks.hold(checked.name, "create"):
            uuid = await _provision.provision(self._inventory.db, host, checked, principal, None)
            if checked.start:
                await _start_created(host, checked.name, uuid)
        return await self._inventory.get(checked.name)

    async def _create_task(self, principal: Principal, host: LibvirtHost, spec: VmSpec) -> TaskInfo:
        db = self._inventory.db

        async def body(ctx: TaskContext) -> dict[str, Any]:
            async with self._locks.hold(spec.name, "create"):
                uuid = await self._audit.outcome(
                    principal.user,
                    "vm.create",
                    spec.name,
                    lambda: _provision.provision(db, host, spec, principal, ctx),
                )
                if spec.start:
                    await ctx.progress(phase="starting the VM", force=True)
                    await _start_created(host, spec.name, uuid)
            return {"vm": spec.name, "uuid": uuid, "started": spec.start}

        return await self._tasks.start("vm.create", spec.name, principal, body, "queued")


async def _start_created(host: LibvirtHost, name: str, uuid: str) -> None:
    try:
        await host.start(uuid)
    except CorralError as exc:
        # The VM exists and stays: say so, or the caller would think nothing happened.
        exc.message = f"VM {name!r} was created but did not start: {exc.message}"
        raise
