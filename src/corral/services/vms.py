"""VM use cases: inventory, create, power operations, delete."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from corral import store
from corral.errors import Conflict, CorralError, NotFound, OperationTimeout
from corral.metrics import VMS_BY_STATE
from corral.model.task import TaskInfo
from corral.model.vm import DeleteRequest, ShutdownRequest, VmInfo, VmSpec, VmState
from corral.services import vm_provision
from corral.services._db import Db
from corral.services.audit import AuditService
from corral.services.hosts import HostService
from corral.services.locks import OperationLocks
from corral.services.principal import Principal
from corral.services.tasks import TaskContext, TaskService
from corral.store import Vm
from corral.virt import DomainRecord, LibvirtHost, VolumeRef

log = logging.getLogger(__name__)

_POLL_S = 0.2


def _uptime(row: Vm, record: DomainRecord) -> float | None:
    """libvirt has no uptime: virt knows it for starts it saw; the row remembers starts seen
    before a manager restart."""
    if record.uptime_s is not None:
        return record.uptime_s
    if row.started_at is None or record.state in (VmState.SHUTOFF, VmState.CRASHED):
        return None
    return max(0.0, (datetime.now(UTC) - row.started_at).total_seconds())


def vm_info(row: Vm, record: DomainRecord | None, host_connected: bool) -> VmInfo:
    """Inventory (row) + runtime (record). No record: ``missing`` if the host answered,
    ``unknown`` if the host is unreachable."""
    if record is None:
        state = VmState.MISSING if host_connected else VmState.UNKNOWN
        return VmInfo(
            uuid=row.uuid,
            name=row.name,
            host=row.host.name,
            state=state,
            vcpus=0,
            memory_mib=0,
            description=row.description,
            adopted=row.adopted,
            created_at=row.created_at,
        )
    return VmInfo(
        uuid=row.uuid,
        name=row.name,
        host=row.host.name,
        state=record.state,
        vcpus=record.vcpus,
        memory_mib=record.memory_mib,
        uptime_s=_uptime(row, record),
        cpu_time_s=record.cpu_time_s,
        description=record.description,
        accelerator=record.accelerator,
        adopted=row.adopted,
        disks=record.disks,
        created_at=row.created_at,
    )


class VmService:
    def __init__(
        self,
        db: Db,
        hosts: HostService,
        tasks: TaskService,
        audit: AuditService,
        locks: OperationLocks,
    ) -> None:
        self._db = db
        self.hosts = hosts
        self.tasks = tasks
        self.audit = audit
        self.locks = locks

    # -- lookup ------------------------------------------------------------------------------

    async def row(self, name: str) -> Vm:
        return await self._db(lambda s: store.get_vm(s, name))

    async def locate(self, name: str) -> tuple[Vm, LibvirtHost]:
        row = await self.row(name)
        return row, self.hosts.connected(row.host.name)

    async def record(self, name: str) -> tuple[Vm, LibvirtHost, DomainRecord]:
        row, host = await self.locate(name)
        try:
            return row, host, await host.get_domain(row.uuid)
        except NotFound:
            raise NotFound(
                f"VM {name!r} is in the inventory but its domain is gone from host "
                f"{host.name!r}; delete it from Corral with `corral vm delete {name}`"
            ) from None

    async def get(self, name: str) -> VmInfo:
        row = await self.row(name)
        host = self.hosts.get(row.host.name)
        record = None
        if host.connected:
            try:
                record = await host.get_domain(row.uuid)
            except NotFound:
                record = None
        return vm_info(row, record, host.connected)

    async def list_vms(self, host_name: str | None = None) -> list[VmInfo]:
        if host_name is not None:
            self.hosts.get(host_name)
        rows = await self._db(lambda s: store.list_vms(s, host=host_name))
        records: dict[str, dict[str, DomainRecord]] = {}
        for host in self.hosts.all():
            if host.connected and (host_name is None or host.name == host_name):
                try:
                    records[host.name] = {r.uuid: r for r in await host.list_domains()}
                except CorralError as exc:
                    log.warning("listing domains of %s failed: %s", host.name, exc.message)
        result = []
        for row in rows:
            found = records.get(row.host.name)
            result.append(vm_info(row, (found or {}).get(row.uuid), found is not None))
        self._count_states(result, host_name)
        return result

    @staticmethod
    def _count_states(vms: list[VmInfo], host_name: str | None) -> None:
        if host_name is not None:
            return
        for state in VmState:
            VMS_BY_STATE.labels(state.value).set(sum(1 for v in vms if v.state == state))

    # -- audited operations -------------------------------------------------------------------

    async def audited(
        self, principal: Principal, action: str, target: str, op: Callable[[], Awaitable[Any]]
    ) -> Any:
        """Audit the outcome of work done inside a task (the API audits the request itself)."""
        try:
            result = await op()
        except CorralError as exc:
            await self.audit.record(principal.user, action, target, f"error: {exc.message}")
            raise
        await self.audit.record(principal.user, action, target, "ok")
        return result

    async def create(self, principal: Principal, spec: VmSpec) -> VmInfo | TaskInfo:
        host = self.hosts.connected(spec.host or self.hosts.get().name)

        async def _validate() -> VmSpec:
            return await vm_provision.validate(self._db, host, spec)

        checked = await _validate()
        if any(d.import_path for d in checked.disks):
            return await self._create_task(principal, host, checked)

        async def _create() -> VmInfo:
            async with self.locks.hold(checked.name, "create"):
                await vm_provision.provision(self._db, host, checked, principal, None)
            return await self.get(checked.name)

        return await _create()

    async def _create_task(self, principal: Principal, host: LibvirtHost, spec: VmSpec) -> TaskInfo:
        async def body(ctx: TaskContext) -> dict[str, Any]:
            async with self.locks.hold(spec.name, "create"):
                uuid = await self.audited(
                    principal,
                    "vm.create",
                    spec.name,
                    lambda: vm_provision.provision(self._db, host, spec, principal, ctx),
                )
            return {"vm": spec.name, "uuid": uuid}

        return await self.tasks.start("vm.create", spec.name, principal, body, "queued")

    async def _power(
        self,
        principal: Principal,
        name: str,
        action: str,
        op: Callable[[LibvirtHost, DomainRecord], Awaitable[None]],
    ) -> VmInfo:
        async def run() -> VmInfo:
            busy = self.locks.busy(name)
            if busy:
                raise Conflict(f"VM {name!r} is busy with {busy}; wait for it to finish")
            _row, host, record = await self.record(name)
            await op(host, record)
            return await self.get(name)

        return await run()

    async def start(self, principal: Principal, name: str) -> VmInfo:
        async def op(host: LibvirtHost, rec: DomainRecord) -> None:
            if rec.state in (VmState.RUNNING, VmState.PAUSED):
                raise Conflict(f"VM {name!r} is already {rec.state.value}")
            await host.start(rec.uuid)

        return await self._power(principal, name, "start", op)

    async def stop(self, principal: Principal, name: str) -> VmInfo:
        async def op(host: LibvirtHost, rec: DomainRecord) -> None:
            if rec.state == VmState.SHUTOFF:
                raise Conflict(f"VM {name!r} is already shut off")
            await host.destroy(rec.uuid)

        return await self._power(principal, name, "stop", op)

    async def reboot(self, principal: Principal, name: str) -> VmInfo:
        async def op(host: LibvirtHost, rec: DomainRecord) -> None:
            if rec.state != VmState.RUNNING:
                raise Conflict(f"VM {name!r} is {rec.state.value}; only a running VM can reboot")
            await host.reboot(rec.uuid)

        return await self._power(principal, name, "reboot", op)

    async def pause(self, principal: Principal, name: str) -> VmInfo:
        async def op(host: LibvirtHost, rec: DomainRecord) -> None:
            if rec.state != VmState.RUNNING:
                raise Conflict(f"VM {name!r} is {rec.state.value}; only a running VM can pause")
            await host.suspend(rec.uuid)

        return await self._power(principal, name, "pause", op)

    async def resume(self, principal: Principal, name: str) -> VmInfo:
        async def op(host: LibvirtHost, rec: DomainRecord) -> None:
            if rec.state != VmState.PAUSED:
                raise Conflict(f"VM {name!r} is {rec.state.value}, not paused")
            await host.resume(rec.uuid)

        return await self._power(principal, name, "resume", op)

    async def shutdown(self, principal: Principal, name: str, req: ShutdownRequest) -> TaskInfo:
        _row, host, record = await self.record(name)
        if record.state == VmState.SHUTOFF:
            raise Conflict(f"VM {name!r} is already shut off")

        async def body(ctx: TaskContext) -> dict[str, Any]:
            async with self.locks.hold(name, "shutdown"):
                forced = await self.audited(
                    principal,
                    "vm.shutdown",
                    name,
                    lambda: self._shutdown(ctx, host, record.uuid, name, req),
                )
            return {"vm": name, "forced": forced}

        return await self.tasks.start("vm.shutdown", name, principal, body, "asking the guest")

    async def _shutdown(
        self, ctx: TaskContext, host: LibvirtHost, uuid: str, name: str, req: ShutdownRequest
    ) -> bool:
        await host.shutdown(uuid)
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < req.timeout_s:
            if (await host.get_domain(uuid)).state == VmState.SHUTOFF:
                return False
            await ctx.progress(elapsed / req.timeout_s, phase="waiting for the guest to power off")
            await asyncio.sleep(_POLL_S)
        if req.force:
            await ctx.progress(phase="guest did not stop in time: forcing power off", force=True)
            await host.destroy(uuid)
            return True
        raise OperationTimeout(
            f"VM {name!r} did not shut down within {req.timeout_s:g} s (the guest ignored or did "
            f"not finish the ACPI power-off request): retry with --force, or force it off with "
            f"`corral vm stop {name}`"
        )

    async def delete(self, principal: Principal, name: str, req: DeleteRequest) -> list[str]:
        """Returns notes on disks kept (e.g. a disk another VM's linked clone still uses)."""

        async def run() -> list[str]:
            async with self.locks.hold(name, "delete"):
                return await self._delete(name, req)

        return await run()

    async def _delete(self, name: str, req: DeleteRequest) -> list[str]:
        row, host = await self.locate(name)
        notes: list[str] = []
        try:
            record = await host.get_domain(row.uuid)
        except NotFound:
            record = None
        if record is not None:
            if record.state not in (VmState.SHUTOFF, VmState.CRASHED):
                raise Conflict(
                    f"VM {name!r} is {record.state.value}: shut it down or stop it first"
                )
            await host.undefine_domain(record.uuid)
            await host.delete_serial_log(record.name)
            if req.delete_disks:
                notes = await self._delete_disks(host, record)
        await self._db(lambda s: store.delete_vm(s, name))
        return notes

    async def _delete_disks(self, host: LibvirtHost, record: DomainRecord) -> list[str]:
        """Delete the VM's pool volumes, then any linked-clone base nothing uses any more."""
        volumes = {v.path: v for v in await host.list_volumes()}
        notes = []
        doomed: list[VolumeRef] = []
        for disk in record.disks:
            if disk.device != "disk":
                continue
            vol = volumes.get(disk.path)
            if vol is None:
                notes.append(f"kept {disk.path}: it is not in Corral's storage pool")
            elif vm_provision.backs_another(vol, volumes.values()):
                notes.append(f"kept {vol.name}: a linked clone still uses it as its base")
            else:
                doomed.append(vol)
        in_use = {d.path for r in await host.list_domains() for d in r.disks}
        while doomed:
            vol = doomed.pop()
            await host.delete_volume(vol.name)
            del volumes[vol.path]
            base = volumes.get(vol.backing or "")
            if (
                base
                and base.path not in in_use
                and not vm_provision.backs_another(base, volumes.values())
            ):
                doomed.append(base)
        return notes
