"""``systemctl suspend`` or ``systemctl poweroff`` over the SSH access Corral recorded when it
enrolled the host; Wake-on-LAN (``wake``) brings it back."""

from __future__ import annotations

from pathlib import Path

from corral.errors import CorralError, HostUnreachable, PowerDriverFailed
from corral.hostsetup.ssh import SshRunner, SshTarget
from corral.model.host import SshAccess
from corral.model.power import PowerDriverKind, PowerState, SshDriver
from corral.services.power.drivers.wol import send_wake

#: ``--no-block``: systemd answers before the host goes, so the SSH session ends cleanly.
COMMANDS = {
    "suspend": "systemctl --no-block suspend",
    "poweroff": "systemctl --no-block poweroff",
}


class SshPower:
    kind = PowerDriverKind.SSH
    can_power_off = True

    def __init__(self, host: str, config: SshDriver, access: SshAccess, known_hosts: Path) -> None:
        self.host = host
        self.config = config
        self.runner = SshRunner(
            SshTarget(access.destination, access.port, access.key_path), known_hosts
        )

    @property
    def can_power_on(self) -> bool:
        return self.config.wake is not None

    async def power_off(self) -> None:
        command = COMMANDS[self.config.action]
        try:
            await self.runner.run(command, seconds=30)
        except HostUnreachable as exc:
            message = f"cannot {self.config.action} host {self.host}: {exc.message}"
            raise PowerDriverFailed(message) from exc
        except CorralError as exc:
            raise PowerDriverFailed(f"host {self.host} refused `{command}`: {exc.message}") from exc

    async def power_on(self) -> None:
        if self.config.wake is None:
            raise PowerDriverFailed(
                f"host {self.host} was powered down over SSH and nothing can wake it: give "
                "its driver a Wake-on-LAN address (wake), or switch it on by hand"
            )
        await send_wake(self.host, self.config.wake)

    async def status(self) -> PowerState:
        return PowerState.UNKNOWN
