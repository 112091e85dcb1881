"""``corral power apply``: a plan executed as a task, step by step.

First the plan is checked against the cluster as it is now (``stale_reasons``): a plan that
no longer fits is thrown away and the planner asked again, and the task says why. Then, in
the plan's order: wake hosts (and wait until libvirt answers), live-migrate VMs one at a time
through the migration service (each its own ``vm.migrate`` task, with its checks and state
machine), then put emptied hosts in standby. Every intermediate state of a plan keeps the
limits, so a failure stops the plan where it is: nothing is undone, nothing is overcommitted,
and the task's error says which step failed and why.

Taken over from an instance that stopped (:meth:`PowerApply.resume`): the host it was
switching, if any (stored in the task's result before the driver is asked), is resolved as a
taken-over ``host power-on|power-off`` is; the plan stops there and the task fails saying so.
A plan is not carried on blindly: ``power apply`` again plans from the cluster as it is then.
"""

from __future__ import annotations

from typing import Any

from corral.errors import Cancelled, Conflict, MigrationFailed
from corral.model.auth import Role
from corral.model.migration import MigrationRequest
from corral.model.placement import Migration, Plan
from corral.model.power import PowerPlan
from corral.model.task import TaskInfo, TaskState
from corral.placement import stale_reasons
from corral.services._db import Db
from corral.services.audit import AuditService
from corral.services.migrations import VmMigration
from corral.services.power.plan import PowerPlanner
from corral.services.power.switch import HostSwitch
from corral.services.principal import Principal
from corral.services.task_principal import principal_of
from corral.services.tasks import TaskBody, TaskContext, TaskService

KIND = "power.apply"


def steps_of(plan: Plan) -> int:
    return len(plan.wake) + len(plan.migrations) + len(plan.standby)


class PowerApply:
    def __init__(
        self,
        planner: PowerPlanner,
        switch: HostSwitch,
        migration: VmMigration,
        tasks: TaskService,
        audit: AuditService,
        db: Db,
    ) -> None:
        self._db = db
        self._planner = planner
        self._switch = switch
        self._migration = migration
        self._tasks = tasks
        self._audit = audit
        #: The power task running now (one at a time: plans assume the cluster holds still).
        self.running: str | None = None

    def check_idle(self) -> None:
        if self.running is not None:
            raise Conflict(
                f"a power task is running already (task {self.running}): wait for it, or "
                f"cancel it with `corral task cancel {self.running}`"
            )

    async def start(self, principal: Principal, plan_id: str | None) -> TaskInfo:
        principal.require(Role.OPERATOR)
        reviewed = self._planner.get(plan_id) if plan_id else None
        self.check_idle()

        async def body(ctx: TaskContext) -> dict[str, Any]:
            return await self._audit.outcome(
                principal.user,
                KIND,
                reviewed.id if reviewed else "cluster",
                lambda: self._run(ctx, principal, reviewed),
            )

        return await self.run_alone(KIND, "cluster", principal, body, "checking the plan")

    async def run_alone(
        self, kind: str, target: str, principal: Principal, body: TaskBody, phase: str
    ) -> TaskInfo:
        """Start a power task, the only one running until it ends."""
        self.check_idle()
        self.running = "starting"

        async def alone(ctx: TaskContext) -> dict[str, Any] | None:
            self.running = ctx.id
            # A host half switched must be settled: a restart leaves it to ``resume``.
            ctx.survives_restart = True
            try:
                return await body(ctx)
            finally:
                self.running = None

        try:
            return await self._tasks.start(kind, target, principal, alone, phase)
        except BaseException:
            self.running = None
            raise

    async def resume_alone(self, task: TaskInfo, body: TaskBody) -> None:
        """Go on with a power task another instance left, as the power task running here."""

        async def alone(ctx: TaskContext) -> dict[str, Any] | None:
            ctx.survives_restart = True
            mine = self.running is None
            self.running = ctx.id if mine else self.running
            try:
                return await body(ctx)
            finally:
                if mine:
                    self.running = None

        await self._tasks.resume(task, alone)

    async def resume(self, task: TaskInfo) -> None:
        """Settle a plan another instance was carrying out (see the module)."""
        switching = (task.result or {}).get("switching") or {}
        principal = await principal_of(self._db, task.created_by)
        host, to = switching.get("host"), switching.get("to")

        async def settle(ctx: TaskContext) -> dict[str, Any]:
            def report(text: str) -> None:
                ctx.report(phase=text)

            note = "it was switching no host"
            if host and to == "on":
                await self._switch.finish_wake(principal, host, report)
                note = f"host {host}, which it was waking, is on"
            elif host and to == "off":
                await self._switch.finish_standby(principal, host, task.created_at, report)
                note = f"host {host}, which it was switching off, is in standby"
            raise Conflict(
                "the power plan was interrupted (the Corral instance carrying it out stopped) "
                f"at: {task.phase or 'its start'}; {note}; the later steps were not done (a "
                "migration it had started finishes as its own vm.migrate task). Check `corral "
                "power status`, then run `corral power apply` again: it plans from the cluster "
                "as it is now"
            )

        async def body(ctx: TaskContext) -> dict[str, Any]:
            return await self._audit.outcome(
                task.created_by, KIND, task.target, lambda: settle(ctx)
            )

        await self.resume_alone(task, body)

    async def _run(
        self, ctx: TaskContext, principal: Principal, reviewed: PowerPlan | None
    ) -> dict[str, Any]:
        situation = await self._planner.situation()
        stale: list[str] = []
        current = reviewed
        if reviewed is not None:
            stale = stale_reasons(reviewed.plan, situation.snapshot.cluster)
        if current is None or stale:
            current = self._planner.plan_for(situation)
        plan = current.plan
        result: dict[str, Any] = {
            "plan_id": current.id,
            "reviewed_plan_id": reviewed.id if reviewed else None,
            "replanned": bool(stale),
            "stale_reasons": stale,
            "watts_before": plan.watts_before,
            "watts_after": plan.watts_after,
            "woken": [],
            "migrations": [],
            "standby": [],
            "plan": plan.model_dump(mode="json"),
        }
        if stale:
            what = "; ".join(stale[:3])
            await ctx.progress(0.0, phase=f"the plan is stale ({what}): re-planned", force=True)
        if plan.is_empty:
            ctx.report(1.0, phase="nothing to do: the cluster is as the policy wants it")
            return result
        total = steps_of(plan)
        done = 0

        def report(text: str) -> None:
            ctx.report(done / total, phase=f"step {done + 1}/{total}: {text}")

        for host in plan.wake:
            self._check_cancel(ctx, done)
            await _switching(ctx, result, host, "on")
            await self._switch.wake(principal, host, report)
            result["woken"].append(host)
            done += 1
        for move in plan.migrations:
            self._check_cancel(ctx, done)
            await _switching(ctx, result, None, None)
            report(f"moving {move.vm} from {move.source} to {move.target}")
            result["migrations"].append(await self._move(principal, move, f"{done + 1}/{total}"))
            done += 1
        for host in plan.standby:
            self._check_cancel(ctx, done)
            await _switching(ctx, result, host, "off")
            await self._switch.standby(principal, host, report)
            result["standby"].append(host)
            done += 1
        ctx.report(1.0, phase=f"done: {total} step(s), about {plan.watts_after:.0f} W now")
        return result

    async def _move(self, principal: Principal, move: Migration, step: str) -> dict[str, Any]:
        """One live migration of the plan, as its own ``vm.migrate`` task; waits for it."""
        task = await self._migration.start(principal, move.vm, MigrationRequest(to=move.target))
        final = await self._tasks.wait(task.id)
        if final.state is not TaskState.SUCCEEDED:
            raise MigrationFailed(
                f"step {step}: moving VM {move.vm} from {move.source} to "
                f"{move.target} failed ({final.error or final.state.value}); the plan "
                f"stopped there, {move.vm} is on {move.source} and nothing else changed"
            )
        return {
            "vm": move.vm,
            "source": move.source,
            "target": move.target,
            "task": task.id,
            "at": final.finished_at.isoformat() if final.finished_at else None,
        }

    @staticmethod
    def _check_cancel(ctx: TaskContext, done: int) -> None:
        if ctx.cancel_requested:
            raise Cancelled(f"cancelled by a user after {done} step(s); the rest was not done")


async def _switching(
    ctx: TaskContext, result: dict[str, Any], host: str | None, to: str | None
) -> None:
    """Store, before the driver is asked, which host the plan switches now (for a taker)."""
    ctx.report(result={**result, "switching": {"host": host, "to": to} if host else None})
    await ctx.settle()
