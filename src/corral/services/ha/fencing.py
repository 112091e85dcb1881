"""Proof that a silent host is off, before any of its VMs starts elsewhere.

Only a BMC can prove it: Corral switches the host off through its power driver and waits
until the BMC reports it off while libvirt does not answer either. A BMC that reports off
while libvirt answers is a contradiction, not a proof. Without a driver that can switch the
host off, or when the BMC does not answer, the proof is an administrator's
``corral host confirm-down``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from corral.errors import CorralError
from corral.model.power import PowerState
from corral.services.hosts import HostService
from corral.services.power.config import HostPowerConfig

POLL_S = 0.5


@dataclass(frozen=True)
class Fence:
    proven: bool
    reason: str
    #: The BMC says off while libvirt answers: never restart on that word.
    contradiction: bool = False


def _confirm_hint(name: str) -> str:
    return (
        f"once you made sure host {name} is off (or cut from its storage), run "
        f"`corral host confirm-down {name}`"
    )


class Fencing:
    def __init__(self, config: HostPowerConfig, hosts: HostService, off_wait_s: float = 20) -> None:
        self._config = config
        self._hosts = hosts
        self.off_wait_s = off_wait_s

    async def fence(self, name: str) -> Fence:
        try:
            driver = await self._config.driver(name)
        except CorralError as exc:
            return Fence(
                False, f"its power driver cannot be used ({exc.message}); " + _confirm_hint(name)
            )
        if driver is None or not driver.can_power_off:
            return Fence(
                False, "it has no power driver that can switch it off; " + _confirm_hint(name)
            )
        if driver.kind != "ipmi":
            return Fence(
                False,
                f"its power driver ({driver.kind}) cannot prove it is off; " + _confirm_hint(name),
            )
        try:
            await driver.power_off()
        except CorralError as exc:
            return Fence(
                False, f"its BMC did not switch it off ({exc.message}); " + _confirm_hint(name)
            )
        deadline = time.monotonic() + self.off_wait_s
        state = PowerState.UNKNOWN
        while time.monotonic() < deadline:
            state = PowerState.UNKNOWN
            with contextlib.suppress(CorralError):
                state = await driver.status()
            if state is PowerState.OFF:
                break
            await asyncio.sleep(POLL_S)
        if state is not PowerState.OFF:
            return Fence(
                False,
                f"its BMC was asked to switch it off but reports it {state}; "
                + _confirm_hint(name),
            )
        if self._hosts.get(name).connected:
            return Fence(
                False,
                "contradiction: its BMC reports it off, but its libvirt answers; nothing is "
                "restarted elsewhere (check which machine that BMC controls)",
                contradiction=True,
            )
        return Fence(True, "switched off through its BMC, which reports it off")
