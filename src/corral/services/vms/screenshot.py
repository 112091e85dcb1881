"""A PNG of a VM's screen, through libvirt (no VNC session needed)."""

from __future__ import annotations

from corral.errors import Conflict
from corral.model.vm import VmState
from corral.services.vms.inventory import VmInventory
from corral.services.vms.screen_source import require_screen


class VmScreenshot:
    def __init__(self, inventory: VmInventory) -> None:
        self._inventory = inventory

    async def png(self, name: str) -> bytes:
        _row, host, record = await self._inventory.record(name)
        require_screen(record, vnc=False)
        if record.state not in (VmState.RUNNING, VmState.PAUSED):
            raise Conflict(f"VM {name!r} is {record.state.value}: start it to see its screen")
        return await host.consoles.screenshot_png(record.uuid)
