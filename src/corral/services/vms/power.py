"""Power operations: start, force stop, reboot, pause, resume, and graceful shutdown (a task)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from corral.errors import Conflict, OperationTimeout
from corral.model.task import TaskInfo
from corral.model.vm import ShutdownRequest, VmInfo, VmState
from corral.services.principal import Principal
from corral.services.tasks import TaskContext
from corral.services.vms._use_case import TaskUseCase
from corral.virt import DomainRecord, LibvirtHost

_POLL_S = 0.2


class VmPower(TaskUseCase):
    async def _power(
        self, name: str, op: Callable[[LibvirtHost, DomainRecord], Awaitable[None]]
    ) -> VmInfo:
        busy = (await self._locks.busy_anywhere()).get(name)
        if busy:
            raise Conflict(f"VM {name!r} is busy with {busy}; wait for it to finish")
        _row, host, record = await self._inventory.record(name)
        await op(host, record)
        return await self._inventory.get(name)

    async def start(self, principal: Principal, name: str) -> VmInfo:
        async def op(host: LibvirtHost, rec: DomainRecord) -> None:
            if rec.state in (VmState.RUNNING, VmState.PAUSED):
                raise Conflict(f"VM {name!r} is already {rec.state.value}")
            await host.start(rec.uuid)

        return await self._power(name, op)

    async def stop(self, principal: Principal, name: str) -> VmInfo:
        async def op(host: LibvirtHost, rec: DomainRecord) -> None:
            if rec.state == VmState.SHUTOFF:
                raise Conflict(f"VM {name!r} is already shut off")
            await host.destroy(rec.uuid)

        return await self._power(name, op)

    async def reboot(self, principal: Principal, name: str) -> VmInfo:
        async def op(host: LibvirtHost, rec: DomainRecord) -> None:
            if rec.state != VmState.RUNNING:
                raise Conflict(f"VM {name!r} is {rec.state.value}; only a running VM can reboot")
            await host.reboot(rec.uuid)

        return await self._power(name, op)

    async def pause(self, principal: Principal, name: str) -> VmInfo:
        async def op(host: LibvirtHost, rec: DomainRecord) -> None:
            if rec.state != VmState.RUNNING:
                raise Conflict(f"VM {name!r} is {rec.state.value}; only a running VM can pause")
            await host.suspend(rec.uuid)

        return await self._power(name, op)

    async def resume(self, principal: Principal, name: str) -> VmInfo:
        async def op(host: LibvirtHost, rec: DomainRecord) -> None:
            if rec.state != VmState.PAUSED:
                raise Conflict(f"VM {name!r} is {rec.state.value}, not paused")
            await host.resume(rec.uuid)

        return await self._power(name, op)

    async def shutdown(self, principal: Principal, name: str, req: ShutdownRequest) -> TaskInfo:
        _row, host, record = await self._inventory.record(name)
        if record.state == VmState.SHUTOFF:
            raise Conflict(f"VM {name!r} is already shut off")

        async def body(ctx: TaskContext) -> dict[str, Any]:
            ctx.survives_restart = True  # the guest was asked: the next instance waits it out
            async with self._locks.hold(name, "shutdown"):
                forced = await self._audit.outcome(
                    principal.user,
                    "vm.shutdown",
                    name,
                    lambda: self._shutdown(ctx, host, record.uuid, name, req),
                )
            return {"vm": name, "forced": forced}

        params = {"timeout_s": req.timeout_s, "force": req.force, "since": time.time()}
        return await self._tasks.start(
            "vm.shutdown", name, principal, body, "asking the guest", params
        )

    async def resume_shutdown(self, task: TaskInfo) -> None:
        """Take over a shutdown another instance was waiting for: the guest was asked
        already, so wait for what is left of the time (from libvirt), then force if asked."""
        params = await self._tasks.params(task.id)
        req = ShutdownRequest(timeout_s=params["timeout_s"], force=params["force"])
        left = max(0.0, req.timeout_s - (time.time() - params["since"]))
        name = task.target
        _row, host, record = await self._inventory.record(name)

        async def body(ctx: TaskContext) -> dict[str, Any]:
            ctx.survives_restart = True
            async with self._locks.hold(name, "shutdown"):
                forced = await self._audit.outcome(
                    task.created_by,
                    "vm.shutdown",
                    name,
                    lambda: self._shutdown(ctx, host, record.uuid, name, req, left=left),
                )
            return {"vm": name, "forced": forced, "resumed": True}

        await self._tasks.resume(task, body)

    async def _shutdown(
        self,
        ctx: TaskContext,
        host: LibvirtHost,
        uuid: str,
        name: str,
        req: ShutdownRequest,
        *,
        left: float | None = None,
    ) -> bool:
        """``left``: a resumed shutdown, the guest asked already (None: ask it now)."""
        if left is None:
            await host.shutdown(uuid)
        started = time.monotonic() - (req.timeout_s - left if left is not None else 0.0)
        while (await host.get_domain(uuid)).state != VmState.SHUTOFF:
            elapsed = time.monotonic() - started
            if elapsed >= req.timeout_s:
                break
            await ctx.progress(elapsed / req.timeout_s, phase="waiting for the guest to power off")
            await asyncio.sleep(_POLL_S)
        else:
            return False
        if req.force:
            await ctx.progress(phase="guest did not stop in time: forcing power off", force=True)
            await host.destroy(uuid)
            return True
        raise OperationTimeout(
            f"VM {name!r} did not shut down within {req.timeout_s:g} s (the guest ignored or did "
            f"not finish the ACPI power-off request): retry with --force, or force it off with "
            f"`corral vm stop {name}`"
        )
