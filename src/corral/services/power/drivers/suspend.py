"""Suspend through libvirt (``virNodeSuspendForDuration``): the host's RTC wakes it after the
configured duration, or a Wake-on-LAN packet does (``wake``). libvirt refuses a suspend when
the host cannot do it (no ``pm-utils``/systemd support, S3 off in firmware): a clear error."""

from __future__ import annotations

from corral.errors import CorralError, PowerDriverFailed
from corral.model.power import PowerDriverKind, PowerState, SuspendDriver
from corral.services.power.drivers.wol import send_wake
from corral.virt import LibvirtHost


class SuspendPower:
    kind = PowerDriverKind.SUSPEND
    can_power_off = True

    def __init__(self, host: LibvirtHost, config: SuspendDriver) -> None:
        self.host = host
        self.config = config

    @property
    def can_power_on(self) -> bool:
        return self.config.wake is not None or self.config.duration_s > 0

    async def power_off(self) -> None:
        try:
            await self.host.suspend_node(self.config.target, self.config.duration_s)
        except CorralError as exc:
            raise PowerDriverFailed(
                f"host {self.host.name} refused to suspend to {self.config.target}: {exc.message}"
            ) from exc

    async def power_on(self) -> None:
        if self.config.wake is not None:
            await send_wake(self.host.name, self.config.wake)
            return
        if self.config.duration_s == 0:
            raise PowerDriverFailed(
                f"host {self.host.name} sleeps until something wakes it: give its driver a "
                "Wake-on-LAN address (wake) or a duration, or wake it by hand"
            )
        # The RTC wakes it by itself; Corral waits for it.

    async def status(self) -> PowerState:
        return PowerState.UNKNOWN
