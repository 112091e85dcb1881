"""Switching one host on (out of standby) or off (into standby) through its driver, and
checking with libvirt that it really happened.

Standby is recorded *before* a host is switched off, so that its connection going away is no
failure and nothing is placed on it meanwhile. If the driver refuses or does not answer, the
host is marked as it really is: still answering libvirt → not in standby. Waking, the flag
goes only once libvirt answers again. A host is switched off only when libvirt lists no
domain on it at all: a VM is never stranded.

Taken over from an instance that stopped (``finish_wake``, ``finish_standby``): a wake asks the
driver again (switching on a host that is on changes nothing); a power-off never does — the
first request may still be under way — it waits out what is left of the time for the host to
go down, and otherwise marks the host as it is and fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

from corral.errors import Conflict, CorralError, OperationTimeout, PowerDriverFailed
from corral.model.power import PowerState
from corral.services.audit import AuditService
from corral.services.hosts import HostService
from corral.services.power.config import HostPowerConfig
from corral.services.power.drivers import PowerDriver
from corral.services.principal import Principal

POLL_S = 0.5

Report = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class HostSwitch:
    def __init__(
        self,
        hosts: HostService,
        config: HostPowerConfig,
        audit: AuditService,
        wake_timeout_s: float,
        off_timeout_s: float,
    ) -> None:
        self._hosts = hosts
        self._config = config
        self._audit = audit
        self.wake_timeout_s = wake_timeout_s
        self.off_timeout_s = off_timeout_s

    async def _driver(self, name: str, need: str) -> PowerDriver:
        driver = await self._config.driver(name)
        if driver is None:
            raise Conflict(
                f"host {name} has no power driver: configure one with `corral host power {name} "
                "--driver …`"
            )
        if need == "on" and not driver.can_power_on:
            raise Conflict(f"host {name}'s driver {driver.kind} cannot switch it on")
        if need == "off" and not driver.can_power_off:
            raise Conflict(f"host {name}'s driver {driver.kind} cannot switch it off")
        return driver

    async def check_can_power_off(self, name: str) -> None:
        """409 before any task: no driver that can, or VMs still on the host."""
        await self._driver(name, "off")
        host = self._hosts.connected(name)
        domains = await host.list_domains()
        if domains:
            names = ", ".join(d.name for d in domains[:5])
            raise Conflict(
                f"host {name} still has {len(domains)} VM(s) ({names}): move them away first "
                f"(`corral host evacuate {name}`); Corral never powers off a host with VMs"
            )

    async def wake(self, principal: Principal, name: str, report: Report = _quiet) -> None:
        driver = await self._driver(name, "on")
        host = self._hosts.get(name)
        try:
            report(f"waking {name} through {driver.kind}")
            await driver.power_on()
            report(f"waiting for {name} to answer libvirt")
            if not await self._until(lambda: host.connected, self.wake_timeout_s):
                raise OperationTimeout(
                    f"host {name} was switched on through {driver.kind} but did not answer "
                    f"libvirt within {self.wake_timeout_s:g} s; it stays in standby"
                )
        except CorralError as exc:
            await self._settle(name)
            await self._audit.record(principal.user, "host.power_on", name, f"error: {exc.message}")
            raise
        await self._hosts.set_standby(name, False)
        await self._audit.record(principal.user, "host.power_on", name, "ok", f"via {driver.kind}")

    async def standby(self, principal: Principal, name: str, report: Report = _quiet) -> None:
        driver = await self._driver(name, "off")
        await self.check_can_power_off(name)
        host = self._hosts.get(name)
        await self._hosts.set_standby(name, True)
        try:
            report(f"switching {name} off through {driver.kind}")
            await driver.power_off()
            report(f"waiting for {name} to go down")
            down = await self._until(lambda: not host.connected, self.off_timeout_s)
            if not down:
                raise OperationTimeout(
                    f"host {name} was switched off through {driver.kind} but still answers "
                    f"libvirt after {self.off_timeout_s:g} s; it stays marked as running"
                )
            if driver.kind == "ipmi" and await self._status(driver) is PowerState.ON:
                raise PowerDriverFailed(f"the BMC of host {name} still reports it on")
        except CorralError as exc:
            state = await self._settle(name)
            message = f"{exc.message} (host {name} is {state}; its VMs were not touched)"
            await self._audit.record(principal.user, "host.power_off", name, f"error: {message}")
            exc.message = message
            exc.args = (message,)
            raise
        await self._audit.record(principal.user, "host.power_off", name, "ok", f"via {driver.kind}")

    async def finish_wake(self, principal: Principal, name: str, report: Report = _quiet) -> None:
        """A wake another instance began (see the module)."""
        if self._hosts.get(name).connected:
            await self._hosts.set_standby(name, False)
            await self._audit.record(principal.user, "host.power_on", name, "ok", "it was on")
            return
        await self.wake(principal, name, report)

    async def finish_standby(
        self, principal: Principal, name: str, since: datetime, report: Report = _quiet
    ) -> None:
        """A power-off another instance began at ``since`` (see the module)."""
        interrupted = (
            f"the power-off of host {name} was interrupted (the Corral instance doing it stopped)"
        )
        if not await self._hosts.standby_recorded(name):
            raise Conflict(
                f"{interrupted} before its driver was asked: nothing was switched, the host "
                f"runs as before; run `corral host power-off {name}` again"
            )
        host = self._hosts.get(name)
        left = self.off_timeout_s - (datetime.now(UTC) - _aware(since)).total_seconds()
        report(f"waiting for {name} to go down (taken over from a stopped Corral instance)")
        down = await self._until(lambda: not host.connected, max(0.0, left))
        driver = None
        with contextlib.suppress(CorralError):  # unusable now: libvirt's word alone
            driver = await self._config.driver(name)
        if down and driver is not None and driver.kind == "ipmi":
            down = await self._status(driver) is not PowerState.ON
        if down:
            await self._audit.record(principal.user, "host.power_off", name, "ok", "went down")
            return
        state = await self._settle(name)
        message = (
            f"{interrupted} and the host did not go down: it is {state}, its VMs were not "
            f"touched; check its driver (`corral host power {name}`) and run `corral host "
            f"power-off {name}` again"
        )
        await self._audit.record(principal.user, "host.power_off", name, f"error: {message}")
        raise OperationTimeout(message)

    async def _settle(self, name: str) -> str:
        """Mark the host as it really is after a failure; returns how it is, in words."""
        if self._hosts.get(name).connected:
            await self._hosts.set_standby(name, False)
            return "running and connected"
        return "in standby" if self._hosts.in_standby(name) else "unreachable"

    @staticmethod
    async def _status(driver: PowerDriver) -> PowerState:
        with contextlib.suppress(CorralError):
            return await driver.status()
        return PowerState.UNKNOWN

    @staticmethod
    async def _until(condition: Callable[[], bool], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)
