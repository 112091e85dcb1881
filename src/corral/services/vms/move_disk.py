"""Moving one disk of a VM to another storage domain of its host, as a task.

Everything is checked before the task starts (a clear 4xx, nothing made): the disk exists and
is no CD-ROM, the VM has no internal snapshots (they live inside the qcow2 file a copy leaves
behind), the host reaches the target domain, the disk is not there already, and the domain has
room for the disk's virtual size. Then a new volume is made in the target domain and filled:

- running (or paused) VM: libvirt block copy into it, the guest writing on; once the copy is
  in sync the guest is switched over (pivot), then the persistent definition follows;
- shut-off VM: the volume is copied into it on the host — a libvirt volume clone between
  pools (local, shared-dir), the host agent's ``disk.copy`` (``qemu-img convert``) to and from
  nfs — then the definition follows.

A failure or a cancel stops the copy and deletes the new volume: the VM stays on its old disk.
After success the old volume is deleted unless the request keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import secrets
import time
from dataclasses import dataclass
from typing import Any

from corral.errors import Conflict, CorralError, InsufficientResources, NotFound
from corral.model.disk_move import DiskMoveRequest
from corral.model.storage_domain import (
    LOCAL_DOMAIN,
    DiskSource,
    ReachState,
    StorageDomainKind,
    VolumeOperation,
)
from corral.model.task import TaskInfo
from corral.model.vm import DiskInfo, VmState
from corral.services.audit import AuditService
from corral.services.locks import OperationLocks
from corral.services.principal import Principal
from corral.services.storage import DomainConfig, StorageDomains, StorageDriver
from corral.services.storage.driver import AgentCall
from corral.services.tasks import TaskContext, TaskService
from corral.services.vms import move_disk_recovery as recovery
from corral.services.vms._use_case import TaskUseCase
from corral.services.vms.inventory import VmInventory
from corral.services.vms.move_disk_recovery import RECORD_KEY, move_record
from corral.virt import DomainRecord, LibvirtHost, VolumeRef
from corral.virt.disk_moves import DiskFacts

log = logging.getLogger(__name__)

KIND = "vm.disk.move"
#: A copy that has not advanced for this long (and is not in sync) is given up.
STALL_S = 300.0
_POLL_S = 0.5
_LIVE = frozenset({VmState.RUNNING, VmState.PAUSED})
#: Kinds whose volumes are files in a libvirt pool of each host: a shut-off VM's volume is
#: copied into them by libvirt (a volume clone on the host).
_POOL_KINDS = frozenset({StorageDomainKind.LOCAL, StorageDomainKind.SHARED_DIR})
NFS = StorageDomainKind.NFS
#: A shut-off copy through the host agent may take this long (the agent's own bound, plus SSH).
AGENT_COPY_TIMEOUT_S = 3700.0


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


@dataclass(frozen=True)
class MovePlan:
    """What the checks found: where the disk is, where it goes, how big it is."""

    host: LibvirtHost
    record: DomainRecord
    disk: DiskInfo
    live: bool
    source_domain: str | None
    source: StorageDriver | None
    target_domain: str
    target: StorageDriver
    facts: DiskFacts
    #: How a shut-off VM's disk is copied (``libvirt`` or ``agent``); None when live.
    copier: str | None


def _find_disk(record: DomainRecord, disk: str) -> DiskInfo:
    found = next((d for d in record.disks if disk in (d.name, d.target)), None)
    if found is None:
        names = ", ".join(f"{d.name} ({d.target})" for d in record.disks if d.device == "disk")
        raise NotFound(f"VM {record.name!r} has no disk {disk!r}; its disks: {names or 'none'}")
    if found.device == "cdrom":
        raise Conflict(
            f"{found.name} ({found.target}) of VM {record.name!r} is a CD-ROM drive: its medium "
            "is an image of the library, not a disk to move (change it with `corral vm media`)"
        )
    return found


def _check_creates_volumes(driver: StorageDriver) -> None:
    for support in driver.operations():
        if support.operation is VolumeOperation.CREATE_VOLUME and not support.supported:
            raise Conflict(
                f"storage domain {driver.config.name} cannot take a moved disk: Corral cannot "
                f"create volumes in it ({support.reason})"
            )


async def _check_room(
    host: LibvirtHost, target: StorageDriver, disk: DiskInfo, vm: str, capacity: int
) -> None:
    free = await target.free_bytes(host)
    if capacity > free:
        raise InsufficientResources(
            f"storage domain {target.config.name} has {_gib(free)} ({free} bytes) free on host "
            f"{host.name}, disk {disk.name} ({disk.target}) of VM {vm!r} needs "
            f"{_gib(capacity)} ({capacity} bytes, its virtual size): free space there or "
            "choose another domain"
        )


async def _volume_at(
    driver: StorageDriver | None, host: LibvirtHost, path: str
) -> VolumeRef | None:
    if driver is None:
        return None
    return next((v for v in await driver.list_volumes(host) if v.path == path), None)


class VmDiskMove(TaskUseCase):
    def __init__(
        self,
        inventory: VmInventory,
        tasks: TaskService,
        audit: AuditService,
        locks: OperationLocks,
        domains: StorageDomains,
        agent: AgentCall | None = None,
    ) -> None:
        super().__init__(inventory, tasks, audit, locks)
        self._domains = domains
        self._agent = agent

    async def move(
        self, principal: Principal, name: str, disk: str, req: DiskMoveRequest
    ) -> TaskInfo:
        release = self._locks.acquire(name, "a disk move")
        try:
            plan = await self._plan(name, disk, req)
            target = f"{name}/{plan.disk.target}->{req.to}"

            async def body(ctx: TaskContext) -> dict[str, Any]:
                try:
                    return await self._audit.outcome(
                        principal.user, KIND, target, lambda: self._run(ctx, plan, req)
                    )
                finally:
                    release()

            how = "live (block copy)" if plan.live else "shut off (volume copy)"
            phase = f"checked: disk {plan.disk.target} → storage domain {req.to}, {how}"
            return await self._tasks.start(KIND, name, principal, body, phase)
        except BaseException:
            release()
            raise

    async def resume(self, task: TaskInfo) -> None:
        """A move a previous Corral left running: resolve it (recovery at start-up)."""
        record = (task.result or {}).get(RECORD_KEY)
        release = self._locks.acquire(task.target, "a disk move (resumed)")

        async def body(ctx: TaskContext) -> dict[str, Any]:
            try:
                host = None
                if record and record["host"] in {h.name for h in self._inventory.hosts.all()}:
                    host = self._inventory.hosts.get(record["host"])
                return await recovery.settle(record, host, self._domains)
            finally:
                release()

        await self._tasks.resume(task, body)

    # -- checks ------------------------------------------------------------------------------
    async def _plan(self, name: str, disk: str, req: DiskMoveRequest) -> MovePlan:
        _row, host, record = await self._inventory.record(name)
        found = _find_disk(record, disk)
        if record.state not in _LIVE and record.state is not VmState.SHUTOFF:
            raise Conflict(
                f"VM {name!r} is {record.state.value}: a disk moves while the VM runs or is "
                "shut off; wait until it is one of them"
            )
        if snapshots := await host.list_snapshots(record.uuid):
            raise Conflict(
                f"VM {name!r} has snapshots ({', '.join(s.name for s in snapshots)}): they live "
                "inside its qcow2 disk files, which a move leaves behind (and libvirt's block "
                "copy refuses disks with internal snapshots). Delete them first "
                f"(`corral vm snapshot delete {name} {snapshots[0].name}`)"
            )
        config = await self._domains.config(req.to)
        target = self._domains.driver(config)
        await self._check_reach(host, config.name)
        _check_creates_volumes(target)
        source_domain, source = await self._source_domain(host, found.path)
        if source_domain == config.name:
            raise Conflict(
                f"disk {found.name} ({found.target}) of VM {name!r} is on storage domain "
                f"{config.name} already"
            )
        facts = await self._facts(host, record, found, source)
        await _check_room(host, target, found, name, facts.capacity)
        live = record.state in _LIVE
        copier = None if live else self._offline_copier(name, config, found.path)
        return MovePlan(host, record, found, live, source_domain, source, config.name, target,
                        facts, copier)  # fmt: skip

    @staticmethod
    async def _facts(
        host: LibvirtHost, record: DomainRecord, disk: DiskInfo, source: StorageDriver | None
    ) -> DiskFacts:
        """The disk's size and format: from libvirt, except for a shut-off VM's network disk
        (libvirt 9.0 reads no size of an nfs disk it has not opened): from its domain."""
        if record.state in _LIVE or disk.path.startswith("/"):
            return await host.disk_moves.disk_facts(record.uuid, disk.target)
        volume = await _volume_at(source, host, disk.path)
        if volume is None:
            raise Conflict(
                f"the size of disk {disk.name} ({disk.target}) of the shut-off VM "
                f"{record.name!r} cannot be read ({disk.path} is no volume of a storage "
                "domain): start the VM and move the disk live"
            )
        return DiskFacts(volume.capacity_bytes, volume.allocation_bytes or 0, volume.format)

    def _offline_copier(self, vm: str, config: DomainConfig, path: str) -> str:
        """How a shut-off VM's disk is copied: ``libvirt`` (a volume clone between pools of
        the host) or ``agent`` (``qemu-img convert`` on the host, to or from nfs)."""
        source_file, target_file = path.startswith("/"), config.kind in _POOL_KINDS
        if source_file and target_file:
            return "libvirt"
        source_ok = source_file or path.startswith("nfs://")
        if self._agent is not None and source_ok and (target_file or config.kind is NFS):
            return "agent"
        raise Conflict(
            f"VM {vm!r} is shut off, and a shut-off VM's disk is copied between files of "
            "libvirt pools (local, shared-dir) or, by the host agent, to and from nfs; "
            f"{path} to storage domain {config.name} ({config.kind.value}) is neither: start "
            "the VM and move the disk live"
        )

    async def _check_reach(self, host: LibvirtHost, domain: str) -> None:
        info = await self._domains.show(domain)
        reach = next((r for r in info.hosts if r.host == host.name), None)
        if reach is None or reach.state is not ReachState.REACHABLE:
            state = reach.state.value if reach else "unchecked"
            why = f": {reach.reason}" if reach and reach.reason else ""
            raise Conflict(
                f"host {host.name} does not reach storage domain {domain} ({state}{why}); "
                "a disk moves only between domains its VM's host reaches (see `corral "
                f"storage-domain check {domain}`)"
            )

    async def _source_domain(
        self, host: LibvirtHost, path: str
    ) -> tuple[str | None, StorageDriver | None]:
        """The domain holding the disk's volume (None: a file outside every domain)."""
        held = (await self._domains.holders([path])).get(path)
        if held is not None:
            return held, self._domains.driver(await self._domains.config(held))
        local = self._domains.driver(await self._domains.config(LOCAL_DOMAIN))
        if path in {v.path for v in await local.list_volumes(host)}:
            return LOCAL_DOMAIN, local
        return None, None

    # -- the task ----------------------------------------------------------------------------
    async def _new_volume(self, plan: MovePlan) -> VolumeRef:
        base = posixpath.basename(plan.disk.path) or f"{plan.record.name}-{plan.disk.target}"
        taken = {v.name for v in await plan.target.list_volumes(plan.host)}
        name = base
        if name in taken:
            stem, dot, ext = base.rpartition(".")
            tag = secrets.token_hex(3)
            name = f"{stem}-{tag}.{ext}" if dot else f"{base}-{tag}"
        return await plan.target.create_volume(plan.host, name, plan.facts.capacity)

    async def _run(self, ctx: TaskContext, plan: MovePlan, req: DiskMoveRequest) -> dict[str, Any]:
        await ctx.progress(0.0, phase=f"making the new volume in {plan.target_domain}",
                           bytes_done=0, bytes_total=plan.facts.allocation)  # fmt: skip
        new = await self._new_volume(plan)
        dest = plan.target.disk_source(plan.host, new)
        ctx.report(result=move_record(plan.host.name, plan.record.uuid, plan.record.name,
                                      plan.disk.target, plan.target_domain, new.name, new.path,
                                      plan.disk.path))  # fmt: skip
        await ctx.settle()  # recorded before any copy starts: recovery after a crash reads it
        try:
            if plan.live:
                await self._copy_live(ctx, plan, req, dest)
            else:
                await self._copy_offline(ctx, plan, new, dest)
        except BaseException:
            await self._drop(plan, new)
            raise
        result: dict[str, Any] = {
            "vm": plan.record.name,
            "disk": plan.disk.target,
            "from": plan.source_domain,
            "to": plan.target_domain,
            "volume": new.name,
            "path": dest.file or dest.name,
            "live": plan.live,
        }
        result["source"] = await self._old_volume(ctx, plan, req)
        await ctx.progress(1.0, phase="done")
        return result

    async def _copy_live(
        self, ctx: TaskContext, plan: MovePlan, req: DiskMoveRequest, dest: DiskSource
    ) -> None:
        host, uuid, target = plan.host, plan.record.uuid, plan.disk.target
        await ctx.progress(phase="copying (the guest keeps running)", force=True)
        cap = req.bandwidth_mib_s * 2**20 if req.bandwidth_mib_s else None
        await host.disk_moves.start_copy(uuid, target, dest, bandwidth=cap)
        try:
            synced = await self._until_in_sync(ctx, plan)
            await ctx.progress(0.97, phase="switching the VM to the new volume", force=True)
            await host.disk_moves.pivot(uuid, target)
            ctx.report(bytes_done=synced, bytes_total=synced)
        except BaseException:
            with contextlib.suppress(CorralError):
                await asyncio.shield(host.disk_moves.abort_copy(uuid, target))
            raise
        await self._follow_definition(plan, dest)

    async def _until_in_sync(self, ctx: TaskContext, plan: MovePlan) -> int:
        """Poll the copy until it is in sync; the bytes it copied."""
        host, uuid, target = plan.host, plan.record.uuid, plan.disk.target
        last_done, last_change = -1, time.monotonic()
        while True:
            job = await host.disk_moves.copy_progress(uuid, target)
            if job is None:
                raise CorralError(
                    f"the copy of disk {target} of VM {plan.record.name!r} ended before it "
                    "was complete (did the VM stop?); the VM stays on its old disk"
                )
            fraction = job.done / job.total if job.total else 0.0
            await ctx.progress(0.95 * fraction, bytes_done=job.done, bytes_total=job.total)
            if job.ready:
                return job.total
            if job.done != last_done:
                last_done, last_change = job.done, time.monotonic()
            elif time.monotonic() - last_change > STALL_S:
                raise CorralError(
                    f"the copy of disk {target} of VM {plan.record.name!r} made no progress "
                    f"for {STALL_S:g} s; it was stopped and the VM stays on its old disk"
                )
            await asyncio.sleep(_POLL_S)

    async def _follow_definition(self, plan: MovePlan, dest: DiskSource) -> None:
        """After the pivot the guest runs on the new volume; its next start must too."""
        if not plan.record.inactive_xml:
            return  # a transient domain has no definition to follow
        try:
            await plan.host.disk_moves.set_disk_source(plan.record.uuid, plan.disk.target, dest)
        except CorralError as exc:
            raise CorralError(
                f"VM {plan.record.name!r} now runs on its new volume {dest.file or dest.name}, "
                f"but its definition could not be changed ({exc.message}): its next start "
                f"would use the old volume {plan.disk.path}, which is kept — fix the definition "
                "before restarting it"
            ) from exc

    async def _copy_offline(
        self, ctx: TaskContext, plan: MovePlan, new: VolumeRef, dest: DiskSource
    ) -> None:
        await ctx.progress(0.05, phase=f"copying the volume on host {plan.host.name}", force=True)
        if plan.copier == "agent" and self._agent is not None:
            args = {"source": plan.disk.path, "target": new.path,
                    "source_format": plan.facts.format}  # fmt: skip
            await self._agent(plan.host.name, "disk.copy", args, timeout_s=AGENT_COPY_TIMEOUT_S)
        else:
            await plan.host.disk_moves.clone_volume(plan.disk.path, new.path)
        await ctx.progress(0.95, phase="pointing the VM at the new volume",
                           bytes_done=plan.facts.allocation, force=True)  # fmt: skip
        await plan.host.disk_moves.set_disk_source(plan.record.uuid, plan.disk.target, dest)

    async def _drop(self, plan: MovePlan, new: VolumeRef) -> None:
        try:
            await asyncio.shield(plan.target.delete_volume(plan.host, new.name))
        except CorralError as exc:
            log.error("disk move of VM %s: the new volume %s could not be deleted: %s",
                      plan.record.name, new.name, exc.message)  # fmt: skip

    async def _old_volume(self, ctx: TaskContext, plan: MovePlan, req: DiskMoveRequest) -> str:
        """Delete the old volume (unless kept); what happened to it, in words."""
        path = plan.disk.path
        if req.keep_source:
            return f"kept: {path}"
        if plan.source is None:
            return f"kept: {path} is in no storage domain (delete it by hand if unused)"
        volume = await _volume_at(plan.source, plan.host, path)
        if volume is None:
            return f"kept: {path} is not listed in storage domain {plan.source_domain}"
        await ctx.progress(0.99, phase="deleting the old volume", force=True)
        try:
            await plan.source.delete_volume(plan.host, volume.name)
        except CorralError as exc:
            return f"kept: deleting {path} failed: {exc.message}"
        return f"deleted: {path}"
