"""``corral vm migrate``: a live migration as a task, driven through the state machine.

The request is checked before the task exists (a bad request is a 4xx, not a failed task) and
the VM's operation lock is taken then and held until the task ends. In the task every step is
written to ``result["migration"]`` before the libvirt call it announces; the source's libvirtd
runs the migration (peer-to-peer), Corral watches its job statistics, aborts it on cancel and
switches to post-copy when asked and pre-copy does not converge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from corral import store
from corral.errors import (
    Cancelled,
    CorralError,
    HostUnreachable,
    MigrationFailed,
    NotFound,
    PermissionDenied,
)
from corral.model.cluster import ClusterSettings
from corral.model.migration import (
    MigrationInfo,
    MigrationRequest,
    MigrationStats,
    StorageMode,
    TransportInfo,
)
from corral.model.task import TaskInfo
from corral.services.audit import AuditService
from corral.services.cluster import ClusterSettingsService
from corral.services.locks import OperationLocks
from corral.services.migrations.explain import FailureEvidence, explain
from corral.services.migrations.host_logs import HostLogs
from corral.services.migrations.leftovers import drop_source_log, no_log_yet, remove_made
from corral.services.migrations.machine import (
    MigrationPhase,
    MigrationRecord,
    PostcopySwitch,
    new_info,
)
from corral.services.migrations.outcome import Outcome, OutcomeFinder
from corral.services.migrations.preflight import Checked, Preflight
from corral.services.migrations.readiness import TransportReadiness
from corral.services.principal import Principal
from corral.services.tasks import TaskContext, TaskService
from corral.services.vms.inventory import VmInventory
from corral.virt import LibvirtHost
from corral.virt.migration import DomainMigration
from corral.virt.transports import (
    MigrationEndpoint,
    MigrationFlag,
    MigrationPlan,
    MigrationTransport,
)

log = logging.getLogger(__name__)

P = MigrationPhase
KIND = "vm.migrate"
POLL_S = 0.5  # job statistics
TICK_S = 0.2  # how soon a cancel is noticed


def _mib(value: int | None) -> str:
    return f"{(value or 0) / 2**20:.1f} MiB"


def progress_text(info: MigrationInfo) -> str:
    """The task's phase line while libvirt migrates: pass, dirty rate, throughput, expected
    downtime (what the CLI's bar and the UI show)."""
    head = f"{info.source} → {info.destination} over {info.transport}"
    stats = info.stats
    if info.phase == "postcopy":
        return f"{head}: post-copy, the VM runs on {info.destination}"
    if stats is None:
        return f"{head}: starting"
    parts = [f"pass {stats.iteration or 1}"]
    if stats.dirty_rate_bps is not None:
        parts.append(f"dirtied {_mib(stats.dirty_rate_bps)}/s")
    if stats.memory_bps:
        parts.append(f"sent {_mib(stats.memory_bps)}/s")
    if stats.downtime_ms is not None and (stats.iteration or 0) > 1:
        parts.append(f"expected downtime {stats.downtime_ms} ms")
    return f"{head}: " + ", ".join(parts)


def may_ask_for(transport: MigrationTransport, cluster: ClusterSettings) -> bool:
    """An encrypted transport may always be asked for; an unencrypted one only while an admin
    allows it for the cluster (``allow_insecure_migration``)."""
    return transport.encrypted or cluster.allow_insecure_migration


def fit_plan(plan: MigrationPlan, memory_mib: int) -> MigrationPlan:
    """The plan with what depends on the guest: XBZRLE's cache at most a quarter of its
    memory (a power of two, at least 1 MiB)."""
    if plan.xbzrle_cache_bytes is None:
        return plan
    cap = max(2**20, 1 << ((memory_mib * 2**20 // 4).bit_length() - 1))
    return replace(plan, xbzrle_cache_bytes=min(plan.xbzrle_cache_bytes, cap))


def copied_disks(checked: Checked) -> list[str]:
    """The VM's disks that its storage copy moves (none on a domain the destination reaches,
    and in ``auto`` none the destination sees at their path already)."""
    return [path for _target, path in checked.copied]


def fraction(stats: MigrationStats) -> float:
    total, remaining = stats.data_total or 0, stats.data_remaining
    if not total or remaining is None:
        return 0.0
    return min(0.99, max(0.0, (total - remaining) / total))


class VmMigration:
    def __init__(
        self,
        inventory: VmInventory,
        tasks: TaskService,
        audit: AuditService,
        locks: OperationLocks,
        transports: dict[str, MigrationTransport],
        cluster: ClusterSettingsService,
        logs: HostLogs,
        readiness: TransportReadiness | None = None,
    ) -> None:
        self._inventory = inventory
        self._tasks = tasks
        self._audit = audit
        self._locks = locks
        self.transports = transports
        self._cluster = cluster
        self._logs = logs
        self._preflight = Preflight(inventory, inventory.hosts, readiness)
        self._outcomes = OutcomeFinder(inventory.hosts)
        #: How a migration reaches libvirt (tests put a fake in its place).
        self.migration_factory: Callable[[LibvirtHost, LibvirtHost, str], DomainMigration] = (
            DomainMigration
        )

    # -- the request ---------------------------------------------------------------------------
    async def endpoint(self, host: str) -> MigrationEndpoint:
        """What transports know of ``host``."""
        return await self.preflight.endpoint(host)

    @property
    def preflight(self) -> Preflight:
        """The checks before a migration (the networks service tells it what hosts lack, the
        storage domains which domains they reach)."""
        return self._preflight

    def transport(self, name: str) -> MigrationTransport:
        try:
            return self.transports[name]
        except KeyError:
            known = ", ".join(sorted(self.transports))
            raise NotFound(
                f"transport: unknown migration transport {name!r}; known: {known}"
            ) from None

    async def transport_choices(self) -> list[TransportInfo]:
        """Every transport, by name, and whether a migration may ask for it now (what works
        between which hosts: ``TransportList``)."""
        cluster = await self._cluster.get()
        return [
            TransportInfo(
                name=t.name,
                description=t.description,
                encrypted=t.encrypted,
                allowed=may_ask_for(t, cluster),
            )
            for t in sorted(self.transports.values(), key=lambda t: t.name)
        ]

    async def _consent(
        self, principal: Principal, name: str, transport: MigrationTransport
    ) -> None:
        """An unencrypted transport needs the cluster's consent; audited either way."""
        if transport.encrypted:
            return  # nothing to consent to
        allowed = may_ask_for(transport, await self._cluster.get())
        why = "allowed by the cluster" if allowed else "refused: allow_insecure_migration is off"
        await self._audit.record(
            principal.user,
            "vm.migrate.unencrypted",
            name,
            "ok" if allowed else "denied",
            f"transport {transport.name} ({why}): guest memory crosses the network unencrypted",
        )
        if not allowed:
            raise PermissionDenied(
                f"transport {transport.name} sends VM {name}'s memory unencrypted (anyone on "
                "the path can read or change it), so Corral refuses it unless an admin allowed "
                "it for the cluster: `corral cluster set allow_insecure_migration true`; use "
                "transport tls (the default) or ssh instead"
            )

    async def start(
        self,
        principal: Principal,
        name: str,
        request: MigrationRequest,
    ) -> TaskInfo:
        transport = self.transport(request.transport)
        await self._consent(principal, name, transport)
        release = self._locks.acquire(name, "migration")
        try:
            checked = await self.preflight.check(name, request, transport)
            # From here on the request says what runs: shared, or copy of ``checked.copied``.
            request = request.model_copy(update={"storage": checked.storage})
            plan = fit_plan(
                transport.plan(checked.source_endpoint, checked.destination_endpoint, request),
                checked.vm.memory_mib,
            )
            if checked.copied:
                plan = replace(plan, copy_disks=tuple(t for t, _path in checked.copied))
            if checked.proven_shared:
                plan = replace(plan, flags=plan.flags | {MigrationFlag.UNSAFE})
            info = new_info(
                vm=name,
                uuid=checked.vm.uuid,
                source=checked.source.name,
                destination=checked.destination.name,
                transport=transport.name,
                encrypted=transport.encrypted,
                request=request,
                # The pre-flight refused a copy onto a path the destination holds: libvirt
                # makes every one of these there, and a failure deletes them again.
                destination_volumes=copied_disks(checked)
                if request.storage is StorageMode.COPY
                else [],
                destination_log_made=await no_log_yet(checked.destination, name),
            )

            async def body(ctx: TaskContext) -> dict[str, Any]:
                ctx.survives_restart = True
                try:
                    return await self._audit.outcome(
                        principal.user,
                        KIND,
                        f"{name}->{request.to}",
                        lambda: self._run(ctx, info, checked, plan),
                    )
                finally:
                    release()

            phase = f"checked: {checked.source.name} → {request.to} over {transport.name}"
            task = await self._tasks.start(KIND, name, principal, body, phase)
        except BaseException:
            release()
            raise
        return task

    # -- the task ------------------------------------------------------------------------------
    @staticmethod
    def _persister(ctx: TaskContext) -> Callable[[MigrationInfo], Any]:
        async def persist(info: MigrationInfo) -> None:
            ctx.report(result={"migration": info.model_dump(mode="json")})
            await ctx.settle()

        return persist

    async def _run(
        self, ctx: TaskContext, info: MigrationInfo, checked: Checked, plan: MigrationPlan
    ) -> dict[str, Any]:
        record = MigrationRecord(info, self._persister(ctx))
        await record.advance(P.PREPARED, "pre-flight checks passed")
        migration = self.migration_factory(checked.source, checked.destination, info.uuid)
        started = datetime.now(UTC)
        await record.advance(P.MIGRATING, f"libvirt on {info.source} migrates")
        ctx.report(0.0, phase=progress_text(info))
        runner = asyncio.create_task(migration.run(plan), name=f"migrate {info.vm}")
        try:
            await self._watch(ctx, record, migration, runner)
            await runner
        except MigrationFailed as exc:
            await self._failed(record, migration, exc, started)
        except HostUnreachable as exc:
            await record.advance(P.UNCERTAIN, exc.message)
            return await self.settle(ctx, record)
        except asyncio.CancelledError:
            # The manager is stopping: the source's libvirtd goes on without Corral, and the
            # next Corral resolves the task (UNCERTAIN). A user's cancel went through _watch.
            runner.cancel()
            raise
        result = await self._finish(ctx, record, migration)
        if info.request.storage is StorageMode.COPY:
            result["source_disks_removed"] = await self._remove_copied(checked)
        await drop_source_log(checked.source, checked.destination, info.vm)
        return result

    async def _remove_copied(self, checked: Checked) -> list[str]:
        """After a storage copy the source's volumes are stale copies (and would block a later
        copy back): delete those in Corral's pool that no domain on the source uses. Best
        effort: what could not go is logged, the migration succeeded anyway."""
        paths = set(copied_disks(checked))
        removed = []
        try:
            used = {d.path for r in await checked.source.list_domains() for d in r.disks}
            for volume in await checked.source.storage.list_volumes():
                if volume.path in paths and volume.path not in used:
                    await checked.source.storage.delete_volume(volume.name)
                    removed.append(volume.path)
        except CorralError as exc:
            log.warning("stale disks of %s stay on %s: %s", checked.vm.name, checked.source.name,
                        exc.message)  # fmt: skip
        return removed

    async def _watch(
        self,
        ctx: TaskContext,
        record: MigrationRecord,
        migration: DomainMigration,
        runner: asyncio.Task[None],
    ) -> None:
        """Until libvirt returns: statistics into the task, cancel → abort, post-copy switch.
        A statistics call can block for seconds while libvirt sets the migration up, so it
        runs beside the loop, which keeps noticing a cancel within a tick."""
        switch = PostcopySwitch() if record.info.request.postcopy else None
        reading: asyncio.Task[MigrationStats | None] | None = None
        next_read = 0.0
        try:
            while not runner.done():
                if reading is None and asyncio.get_running_loop().time() >= next_read:
                    reading = asyncio.create_task(migration.stats())
                waiting: set[asyncio.Future[Any]] = {runner} | ({reading} if reading else set())
                await asyncio.wait(waiting, timeout=TICK_S, return_when=asyncio.FIRST_COMPLETED)
                if runner.done():
                    return
                if ctx.cancel_requested and record.phase is P.MIGRATING:
                    await record.advance(P.ABORTING, "cancelled by a user: aborting the job")
                    with contextlib.suppress(CorralError):  # it may have just finished
                        await migration.abort()
                if reading is None or not reading.done():
                    continue
                next_read = asyncio.get_running_loop().time() + POLL_S
                stats = self._reading(record, reading)
                reading = None
                if stats is None:
                    continue
                record.observe(stats)
                if switch and record.phase is P.MIGRATING and switch.should_switch(stats):
                    await migration.start_postcopy()
                    await record.advance(P.POSTCOPY, "pre-copy did not converge: post-copy")
                ctx.report(
                    fraction(stats),
                    phase=progress_text(record.info),
                    bytes_done=stats.data_processed,
                    bytes_total=(stats.data_processed or 0) + (stats.data_remaining or 0) or None,
                    result={"migration": record.info.model_dump(mode="json")},
                )
        finally:
            if reading is not None:
                reading.cancel()

    @staticmethod
    def _reading(
        record: MigrationRecord, reading: asyncio.Task[MigrationStats | None]
    ) -> MigrationStats | None:
        try:
            return reading.result()
        except CorralError as exc:
            log.info("migration statistics of %s: %s", record.info.vm, exc.message)
            return None

    async def _failed(
        self,
        record: MigrationRecord,
        migration: DomainMigration,
        exc: MigrationFailed,
        started: datetime,
    ) -> None:
        info = record.info
        if record.phase is P.ABORTING:
            message = f"cancelled by a user; VM {info.vm} keeps running on {info.source}"
            message += await self._remove_destination_copies(record)
            await record.fail(P.CANCELLED, message)
            raise Cancelled(message)
        detail = None
        with contextlib.suppress(CorralError):
            detail = await migration.failure_detail()
        lines = await self._logs.libvirtd_errors(info.source, started)
        message = explain(
            FailureEvidence(
                vm=info.vm,
                source=info.source,
                destination=info.destination,
                transport=info.transport,
                encrypted=info.encrypted,
                libvirt_message=exc.message,
                qemu_detail=detail,
                log_lines=lines,
                destination_alive=migration.destination.connected,
            )
        )
        if record.phase is P.POSTCOPY:
            message += (
                f"; it failed after the switch to post-copy: the VM is paused on "
                f"{info.destination} and cannot go back (see `corral vm show {info.vm}`)"
            )
        else:
            message += await self._remove_destination_copies(record)
        await record.fail(P.FAILED, message)
        raise MigrationFailed(message, exc.code)

    async def _remove_destination_copies(self, record: MigrationRecord) -> str:
        """Delete what a failed or cancelled migration made on the destination (the disks of
        a storage copy, the serial log its QEMU began); the sentence that ends the task's
        message ("" when no disk was concerned)."""
        info = record.info
        if not info.destination_volumes and not info.destination_log_made:
            return ""
        try:
            destination = self._inventory.hosts.get(info.destination)
        except CorralError as exc:
            return f"; what it made may stay on {info.destination} ({exc.message})"
        log_of = info.vm if info.destination_log_made else None
        removal = await remove_made(destination, info.uuid, info.destination_volumes, log_of)
        info.destination_volumes_removed = removal.removed
        sentence = removal.sentence(info.destination)
        return f"; {sentence}" if sentence else ""

    async def _finish(
        self, ctx: TaskContext, record: MigrationRecord, migration: DomainMigration
    ) -> dict[str, Any]:
        info = record.info
        await record.advance(P.FINISHING, f"running on {info.destination}")
        await self._inventory.db(lambda s: store.update_vm(s, info.vm, host=info.destination))
        with contextlib.suppress(CorralError):
            info.completed = await migration.completed_stats()
        await record.advance(P.COMPLETED, "inventory updated")
        ctx.report(1.0, phase=self.done_text(info))
        return self.result(info)

    @staticmethod
    def done_text(info: MigrationInfo) -> str:
        done = info.completed
        figures = ""
        if done is not None and done.time_elapsed_ms is not None:
            figures = f" ({done.time_elapsed_ms / 1000:.1f} s, downtime {done.downtime_ms} ms)"
        return f"VM {info.vm} runs on {info.destination}{figures}"

    @staticmethod
    def result(info: MigrationInfo) -> dict[str, Any]:
        done = info.completed
        return {
            "vm": info.vm,
            "source": info.source,
            "destination": info.destination,
            "transport": info.transport,
            "total_time_ms": done.time_elapsed_ms if done else None,
            "downtime_ms": done.downtime_ms if done else None,
            "migration": info.model_dump(mode="json"),
        }

    # -- the outcome when Corral could not watch ----------------------------------------------
    async def settle(self, ctx: TaskContext, record: MigrationRecord) -> dict[str, Any]:
        """From UNCERTAIN: wait for the hosts, find where the domain is, end the task."""
        info = record.info
        ctx.report(phase=f"{info.source} → {info.destination}: finding out where VM {info.vm} is")
        await ctx.settle()
        outcome: Outcome = await self._outcomes.find(info.uuid, info.source, info.destination)
        if outcome.on_destination:
            await record.advance(P.FINISHING, outcome.note)
            await self._inventory.db(lambda s: store.update_vm(s, info.vm, host=info.destination))
            with contextlib.suppress(CorralError):
                dest: LibvirtHost = self._inventory.hosts.connected(info.destination)
                src: LibvirtHost = self._inventory.hosts.get(info.source)
                with contextlib.suppress(CorralError):
                    info.completed = await DomainMigration(src, dest, info.uuid).completed_stats()
                await drop_source_log(src, dest, info.vm)
            await record.advance(P.COMPLETED, "inventory updated")
            ctx.report(1.0, phase=self.done_text(info))
            return self.result(info)
        was_cancel = any(step.phase == "aborting" for step in info.steps)
        message = outcome.note + await self._remove_destination_copies(record)
        if was_cancel:
            await record.fail(P.CANCELLED, message)
            raise Cancelled(message)
        await record.fail(P.FAILED, message)
        raise MigrationFailed(message)

    async def resume(self, task: TaskInfo) -> None:
        """A task a previous Corral left running: resolve it (recovery at start-up)."""
        raw = (task.result or {}).get("migration")
        info = MigrationInfo.model_validate(raw) if raw else None
        name = task.target
        release = self._locks.acquire(name, "migration (resumed)")

        async def body(ctx: TaskContext) -> dict[str, Any]:
            ctx.survives_restart = True
            try:
                if info is None or not MigrationPhase[info.phase.upper()].libvirt_involved:
                    raise MigrationFailed(
                        f"Corral restarted before it asked libvirt to migrate VM {name}: the VM "
                        "did not move; run the migration again"
                    )
                record = MigrationRecord(info, self._persister(ctx))
                if record.phase is not P.UNCERTAIN:
                    await record.advance(P.UNCERTAIN, "Corral restarted during the migration")
                return await self.settle(ctx, record)
            finally:
                release()

        try:
            await self._tasks.resume(task, body)
        except BaseException:
            release()
            raise
