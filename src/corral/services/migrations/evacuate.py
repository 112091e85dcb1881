"""``corral host evacuate``: move every VM off a host, each to the connected host with the
most free memory, and keep the host in maintenance.

Maintenance is switched on first, not last: no new VM lands on the host while it is being
emptied. Each running VM moves as its own ``vm.migrate`` task (same checks, same state
machine, each resumable after a restart); VMs are moved one at a time, largest first. A VM
that cannot move is reported and the others still move; the task fails if any VM stays.

Taken over from an instance that stopped (:meth:`HostEvacuation.resume`), an evacuation waits
for the moves that instance had started (each a ``vm.migrate`` task resumed on its own), then
goes on with the VMs still on the host: none is moved twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from corral import store
from corral.errors import Cancelled, Conflict, CorralError, InsufficientResources
from corral.model.migration import MigrationRequest
from corral.model.task import TaskInfo, TaskState
from corral.model.vm import VmState
from corral.services.audit import AuditService
from corral.services.hosts import HostService
from corral.services.migrations.migrate import KIND as MIGRATE
from corral.services.migrations.migrate import VmMigration
from corral.services.migrations.preflight import QEMU_OVERHEAD_MIB
from corral.services.principal import Principal
from corral.services.task_principal import principal_of
from corral.services.tasks import TaskContext, TaskService
from corral.services.vms.inventory import VmInventory
from corral.virt import DomainRecord

KIND = "host.evacuate"
_LIVE = (VmState.RUNNING, VmState.PAUSED, VmState.BLOCKED)


class HostEvacuation:
    def __init__(
        self,
        inventory: VmInventory,
        hosts: HostService,
        tasks: TaskService,
        audit: AuditService,
        migration: VmMigration,
    ) -> None:
        self._inventory = inventory
        self._hosts = hosts
        self._tasks = tasks
        self._audit = audit
        self._migration = migration
        self._busy: set[str] = set()

    async def evacuate(
        self, principal: Principal, name: str, template: MigrationRequest | None = None
    ) -> TaskInfo:
        """``template``: transport and tuning for every move (its ``to`` is ignored)."""
        source = self._hosts.connected(name)
        if name in self._busy:
            raise Conflict(f"host {name!r} is being evacuated already; see `corral task list`")
        self._migration.transport((template or MigrationRequest(to=name)).transport)
        await self._hosts.set_maintenance(name, True)
        self._busy.add(name)

        async def body(ctx: TaskContext) -> dict[str, Any]:
            # A restart of this instance leaves it to the next one (``resume``), as its moves.
            ctx.survives_restart = True
            try:
                return await self._audit.outcome(
                    principal.user, KIND, name, lambda: self._run(ctx, principal, name, template)
                )
            finally:
                self._busy.discard(name)

        # What a taker needs to go on the same way (transport and tuning; no secrets).
        params = {"template": template.model_dump(mode="json") if template else None}
        try:
            return await self._tasks.start(
                KIND, source.name, principal, body, "listing VMs", params
            )
        except BaseException:
            self._busy.discard(name)
            raise

    async def resume(self, task: TaskInfo) -> None:
        """Go on with an evacuation another instance left: see the module."""
        name = task.target
        raw = (await self._tasks.params(task.id)).get("template")
        template = MigrationRequest.model_validate(raw) if raw else None
        principal = await principal_of(self._inventory.db, task.created_by)
        self._busy.add(name)

        async def body(ctx: TaskContext) -> dict[str, Any]:
            ctx.survives_restart = True
            try:
                return await self._audit.outcome(
                    task.created_by, KIND, name, lambda: self._go_on(ctx, principal, name, template)
                )
            finally:
                self._busy.discard(name)

        try:
            await self._tasks.resume(task, body)
        except BaseException:
            self._busy.discard(name)
            raise

    async def _go_on(
        self, ctx: TaskContext, principal: Principal, name: str, template: MigrationRequest | None
    ) -> dict[str, Any]:
        await self._hosts.set_maintenance(name, True)
        on_host = {r.name for r in await self._inventory.db(lambda s: store.list_vms(s, host=name))}
        for move in await self._unfinished_moves(on_host):
            await ctx.progress(phase=f"waiting for the move of {move.target} (task {move.id})")
            await self._tasks.wait(move.id)
        return await self._run(ctx, principal, name, template) | {"resumed": True}

    async def _unfinished_moves(self, vms: set[str]) -> list[TaskInfo]:
        """The migrations of these VMs still under way (started before the takeover)."""

        def unfinished(session: Session) -> list[TaskInfo]:
            return [
                task
                for state in (TaskState.PENDING, TaskState.RUNNING)
                for task in store.list_tasks(session, state=state, limit=10_000, kind=MIGRATE)
                if task.target in vms
            ]

        found: list[TaskInfo] = await self._inventory.db(unfinished)
        return found

    async def _candidates(self, source: str) -> list[tuple[str, int]]:
        """(host, free MiB) of every host a VM could go to, most free memory first."""
        found = []
        for host in self._hosts.all():
            if host.name == source or not host.connected or self._hosts.in_maintenance(host.name):
                continue
            try:
                caps = await host.capabilities()
            except CorralError:
                continue
            found.append((host.name, caps.free_memory_mib))
        return sorted(found, key=lambda item: (-item[1], item[0]))

    async def _destination(
        self, source: str, record: DomainRecord, template: MigrationRequest
    ) -> str:
        transport = self._migration.transport(template.transport)
        source_end = await self._migration.endpoint(source)
        refused = []
        gaps_of = self._migration.preflight.network_gaps
        gaps = await gaps_of({n.network for n in record.nics}) if gaps_of else {}
        for host, free in await self._candidates(source):
            need = record.memory_mib + QEMU_OVERHEAD_MIB
            if free < need:
                refused.append(f"{host} has {free} MiB free")
                continue
            if host in gaps:
                refused.append(f"{host} lacks {gaps[host]}")
                continue
            request = template.model_copy(update={"to": host})
            problems = transport.check(source_end, await self._migration.endpoint(host), request)
            if problems:
                refused.append(problems[0])
                continue
            return host
        raise InsufficientResources(
            f"no host can take VM {record.name} ({record.memory_mib} MiB): "
            + ("; ".join(refused) or "no other connected host outside maintenance")
        )

    async def _run(
        self,
        ctx: TaskContext,
        principal: Principal,
        name: str,
        template: MigrationRequest | None,
    ) -> dict[str, Any]:
        source = self._hosts.connected(name)
        records = sorted(
            (r for r in await source.list_domains()), key=lambda r: (-r.memory_mib, r.name)
        )
        rows = {
            row.uuid for row in await self._inventory.db(lambda s: store.list_vms(s, host=name))
        }
        vms = [r for r in records if r.uuid in rows]
        moved: list[dict[str, Any]] = []
        left: list[str] = []
        for index, record in enumerate(vms):
            if ctx.cancel_requested:
                raise Cancelled(f"cancelled by a user after moving {len(moved)} VM(s)")
            base = template or MigrationRequest(to=name)
            await ctx.progress(index / max(1, len(vms)), phase=f"choosing a host for {record.name}")
            try:
                if record.state not in _LIVE:
                    raise Conflict(
                        f"VM {record.name} is {record.state.value}: evacuation moves running VMs "
                        "(start it, or move or delete it by hand)"
                    )
                to = await self._destination(name, record, base)
                task = await self._migration.start(
                    principal, record.name, base.model_copy(update={"to": to})
                )
                await ctx.progress(
                    phase=f"moving {record.name} to {to} ({index + 1}/{len(vms)}, task {task.id})"
                )
                final = await self._tasks.wait(task.id)
            except CorralError as exc:
                left.append(f"{record.name}: {exc.message}")
                continue
            if final.state is TaskState.SUCCEEDED:
                moved.append({"vm": record.name, "to": to, "task": task.id})
            else:
                left.append(f"{record.name}: {final.error or final.state.value}")
        if left:
            raise Conflict(
                f"host {name} is in maintenance but not empty: {len(left)} VM(s) stayed: "
                + "; ".join(left)
            )
        return {"host": name, "maintenance": True, "moved": moved}
