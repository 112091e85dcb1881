"""Wake-on-LAN: a magic packet (6 x 0xFF, then the MAC 16 times) to a broadcast address."""

from __future__ import annotations

import asyncio

from wakeonlan import wake as send_magic_packets

from corral.errors import PowerDriverFailed
from corral.model.power import PowerDriverKind, PowerState, WakeOnLan


async def send_wake(host: str, wake: WakeOnLan) -> None:
    """Send one magic packet for ``host`` (UDP, fire and forget)."""
    try:
        await asyncio.to_thread(send_magic_packets, wake.mac, host=wake.broadcast, port=wake.port)
    except OSError as exc:
        raise PowerDriverFailed(
            f"could not send the Wake-on-LAN packet for host {host} to "
            f"{wake.broadcast}:{wake.port}: {exc.strerror or exc}"
        ) from exc


class WolPower:
    """On only: the host goes to sleep by other means (its own schedule, a person)."""

    kind = PowerDriverKind.WOL
    can_power_on = True
    can_power_off = False

    def __init__(self, host: str, wake: WakeOnLan) -> None:
        self.host = host
        self.wake = wake

    async def power_on(self) -> None:
        await send_wake(self.host, self.wake)

    async def power_off(self) -> None:
        raise PowerDriverFailed(
            f"host {self.host}'s driver wol can only wake it: configure ipmi, suspend or ssh "
            "to power it off"
        )

    async def status(self) -> PowerState:
        return PowerState.UNKNOWN
