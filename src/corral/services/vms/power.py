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
        busy = self._locks.busy(name)
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
            async with self._locks.hold(name, "shutdown"):
                forced = await self._audit.outcome(
                    principal.user,
                    "vm.shutdown",
                    name,
                    lambda: self._shutdown(ctx, host, record.uuid, name, req),
                )
            return {"vm": name, "forced": forced}

        return await self._tasks.start("vm.shutdown", name, principal, body, "asking the guest")

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
