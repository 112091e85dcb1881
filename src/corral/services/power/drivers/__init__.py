"""Host power drivers: one module each, behind ``PowerDriver`` (base.py).

    ipmi.py     a BMC over IPMI-over-LAN (pyghmi): on, off, status
    wol.py      Wake-on-LAN magic packets: on
    suspend.py  libvirt's node suspend (through corral.virt): off; on by RTC or Wake-on-LAN
    ssh.py      systemctl suspend/poweroff over Corral's SSH access: off; on by Wake-on-LAN

``build_driver`` turns a host's stored configuration (secrets decrypted) into a driver.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import TypeAdapter

from corral.errors import Conflict
from corral.model.host import SshAccess
from corral.model.power import (
    IpmiDriver,
    PowerDriverConfig,
    SshDriver,
    SuspendDriver,
    WolDriver,
)
from corral.services.power.drivers.base import PowerDriver
from corral.services.power.drivers.ipmi import IpmiPower
from corral.services.power.drivers.ssh import SshPower
from corral.services.power.drivers.suspend import SuspendPower
from corral.services.power.drivers.wol import WolPower, send_wake
from corral.virt import LibvirtHost

__all__ = ["PowerDriver", "build_driver", "parse_config", "send_wake"]

_CONFIG: TypeAdapter[PowerDriverConfig] = TypeAdapter(PowerDriverConfig)


def parse_config(settings: dict[str, object]) -> PowerDriverConfig:
    """A stored driver configuration (secrets put back in) as its model."""
    return _CONFIG.validate_python(settings)


def build_driver(
    config: PowerDriverConfig,
    host: LibvirtHost,
    ssh: SshAccess | None,
    known_hosts: Path,
) -> PowerDriver:
    if isinstance(config, IpmiDriver):
        if config.password is None:
            raise Conflict(f"host {host.name}'s BMC has no password on record: set it again")
        return IpmiPower(host.name, config.address, config.port, config.user, config.password)
    if isinstance(config, WolDriver):
        return WolPower(host.name, config)
    if isinstance(config, SuspendDriver):
        return SuspendPower(host, config)
    if isinstance(config, SshDriver):
        if ssh is None:
            raise Conflict(
                f"host {host.name} was not enrolled over SSH, so Corral cannot log in to power "
                "it off: enroll it with `corral host enroll … --ssh`, or pick another driver"
            )
        return SshPower(host.name, config, ssh, known_hosts)
    raise Conflict(f"unknown power driver {config!r}")  # pragma: no cover - the union is closed
