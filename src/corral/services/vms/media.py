"""CD-ROM media: insert an ISO image of the VM's host (or of a shared storage domain it
reaches), or eject, on a running or shut-off VM.

Every check happens before libvirt is asked: an unknown image, one of another host or a disk
image is refused and the VM stays as it was. A shut-off VM without a CD-ROM drive gets one; a
running one cannot (IDE and SATA drives are not hot-pluggable) and is refused with a Conflict.
"""

from __future__ import annotations

from corral.model.image import CdromRequest
from corral.model.vm import VmInfo
from corral.services.images import ImageLibrary
from corral.services.locks import OperationLocks
from corral.services.principal import Principal
from corral.services.vms.inventory import VmInventory


class VmMedia:
    def __init__(self, inventory: VmInventory, images: ImageLibrary, locks: OperationLocks) -> None:
        self._inventory = inventory
        self._images = images
        self._locks = locks

    async def change(self, principal: Principal, name: str, req: CdromRequest) -> VmInfo:
        async with self._locks.hold(name, "a CD-ROM media change"):
            _row, host, record = await self._inventory.record(name)
            if req.image is None:
                await host.change_media(record.uuid, None)
            else:
                async with self._images.inserting(host, req.image, vm=name) as image:
                    await host.change_media(record.uuid, image.path)
        return await self._inventory.get(name)
