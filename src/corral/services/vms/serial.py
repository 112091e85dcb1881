"""A VM's first serial port: its log (kept by virtlogd in the pool) and the live console,
shared by every reader (``SerialHubs``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from corral.errors import Conflict, InvalidRequest
from corral.model.vm import VmState
from corral.services.vms.inventory import VmInventory
from corral.services.vms.serial_hub import SerialHubs, SerialTap
from corral.virt import LibvirtHost, SerialConsole


class VmSerial:
    def __init__(self, inventory: VmInventory) -> None:
        self._inventory = inventory
        self.hubs = SerialHubs()

    async def log(self, name: str, tail_bytes: int | None, tail_lines: int | None = None) -> bytes:
        """The serial log: its last ``tail_lines`` lines, else its last ``tail_bytes``."""
        if tail_bytes is not None and tail_lines is not None:
            raise InvalidRequest("ask for tail_lines or tail_bytes, not both")
        row, host = await self._inventory.locate(name)
        return await host.consoles.read_serial_log(row.name, tail_bytes, tail_lines)

    async def check_open(self, name: str) -> None:
        """Conflict unless the serial console can be opened now (before issuing a ticket)."""
        _row, _host, record = await self._inventory.record(name)
        if record.state not in (VmState.RUNNING, VmState.PAUSED):
            raise Conflict(f"VM {name!r} is {record.state.value}: start it to use its console")

    @contextlib.asynccontextmanager
    async def tap(self, name: str, writer: bool) -> AsyncIterator[SerialTap]:
        """A reader of the VM's console (``writer``: its keys reach the guest). The first
        reader opens the VM's console stream; the others share it."""
        await self.check_open(name)
        _row, host, record = await self._inventory.record(name)
        async with self.hubs.tap(
            record.uuid, writer, lambda: _open(host, record.uuid, writer)
        ) as tap:
            yield tap


async def _open(host: LibvirtHost, uuid: str, writer: bool) -> SerialConsole:
    """Without force: Corral never takes the console from a client. Only when a client outside
    Corral (``virsh console``) holds it may an operator take it over, as before."""
    try:
        return await host.consoles.open_serial_console(uuid)
    except Conflict:
        if not writer:
            raise
        return await host.consoles.open_serial_console(uuid, force=True)
