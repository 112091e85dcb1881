"""A VM's first serial port: its log (kept by virtlogd in the pool) and the live console."""

from __future__ import annotations

from corral.errors import Conflict
from corral.model.vm import VmState
from corral.services.vms.inventory import VmInventory
from corral.virt import SerialConsole


class VmSerial:
    def __init__(self, inventory: VmInventory) -> None:
        self._inventory = inventory

    async def log(self, name: str, tail_bytes: int | None) -> bytes:
        row, host = await self._inventory.locate(name)
        return await host.consoles.read_serial_log(row.name, tail_bytes)

    async def check_open(self, name: str) -> None:
        """Conflict unless the serial console can be opened now (before issuing a ticket)."""
        _row, _host, record = await self._inventory.record(name)
        if record.state not in (VmState.RUNNING, VmState.PAUSED):
            raise Conflict(f"VM {name!r} is {record.state.value}: start it to use its console")

    async def open(self, name: str) -> SerialConsole:
        await self.check_open(name)
        _row, host, record = await self._inventory.record(name)
        return await host.consoles.open_serial_console(record.uuid)
