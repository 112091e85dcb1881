"""``corral host power-on NAME`` / ``power-off NAME``: one host switched by hand, as a task.

Power-off is refused (409, before any task) for a host without a driver that can, or with
VMs on it; it puts the host in standby like a plan would. Power-on wakes a host in standby
(or one that is simply down) and waits until libvirt answers.

Either, taken over from an instance that stopped, is resolved from the host's real state
(``HostSwitch.finish_wake`` / ``finish_standby``): never switched twice.
"""

from __future__ import annotations

from typing import Any

from corral.errors import Conflict
from corral.model.auth import Role
from corral.model.task import TaskInfo
from corral.services._db import Db
from corral.services.hosts import HostService
from corral.services.power.apply import PowerApply
from corral.services.power.switch import HostSwitch
from corral.services.principal import Principal
from corral.services.task_principal import principal_of
from corral.services.tasks import TaskContext

ON_KIND = "host.power_on"
OFF_KIND = "host.power_off"


class HostPowerTasks:
    def __init__(self, hosts: HostService, switch: HostSwitch, apply: PowerApply, db: Db) -> None:
        self._db = db
        self._hosts = hosts
        self._switch = switch
        self._apply = apply

    async def power_on(self, principal: Principal, name: str) -> TaskInfo:
        principal.require(Role.ADMIN)
        host = self._hosts.get(name)
        if host.connected and not self._hosts.in_standby(name):
            raise Conflict(f"host {name} is on and connected already")

        async def body(ctx: TaskContext) -> dict[str, Any]:
            def report(text: str) -> None:
                ctx.report(phase=text)

            await self._switch.wake(principal, name, report)
            ctx.report(1.0, phase=f"host {name} is on and connected")
            return {"host": name, "standby": False}

        return await self._apply.run_alone(ON_KIND, name, principal, body, "switching on")

    async def power_off(self, principal: Principal, name: str) -> TaskInfo:
        principal.require(Role.ADMIN)
        self._hosts.get(name)
        if self._hosts.in_standby(name):
            raise Conflict(f"host {name} is in standby already")
        await self._switch.check_can_power_off(name)

        async def body(ctx: TaskContext) -> dict[str, Any]:
            def report(text: str) -> None:
                ctx.report(phase=text)

            await self._switch.standby(principal, name, report)
            ctx.report(1.0, phase=f"host {name} is in standby")
            return {"host": name, "standby": True}

        return await self._apply.run_alone(OFF_KIND, name, principal, body, "switching off")

    async def resume_on(self, task: TaskInfo) -> None:
        """A power-on another instance left: done once the host answers libvirt."""
        principal = await principal_of(self._db, task.created_by)
        name = task.target

        async def body(ctx: TaskContext) -> dict[str, Any]:
            def report(text: str) -> None:
                ctx.report(phase=text)

            await self._switch.finish_wake(principal, name, report)
            ctx.report(1.0, phase=f"host {name} is on and connected")
            return {"host": name, "standby": False, "resumed": True}

        await self._apply.resume_alone(task, body)

    async def resume_off(self, task: TaskInfo) -> None:
        """A power-off another instance left: done if the host went down, never asked twice."""
        principal = await principal_of(self._db, task.created_by)
        name = task.target

        async def body(ctx: TaskContext) -> dict[str, Any]:
            def report(text: str) -> None:
                ctx.report(phase=text)

            await self._switch.finish_standby(principal, name, task.created_at, report)
            ctx.report(1.0, phase=f"host {name} is in standby")
            return {"host": name, "standby": True, "resumed": True}

        await self._apply.resume_alone(task, body)
