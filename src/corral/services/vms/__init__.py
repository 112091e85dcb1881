"""VM use cases, one module each; ``VmServices`` holds one instance of every use case.

    inventory.py           look up, list and show VMs (every other use case starts here)
    listing.py             pages of VMs (filters, sort, cursor) and their counts
    create.py              create (a task when a disk is imported); _provision.py builds it
    power.py               start, stop, reboot, pause, resume, graceful shutdown
    delete.py              delete a VM and, on request, its disks
    snapshots.py           internal snapshots
    clone.py               linked clones
    screenshot.py          a PNG of the screen
    serial.py              serial log and live serial console
    console_automation.py  type on the keyboard, wait for an image on the screen (VNC)
    media.py               CD-ROM media: insert an image of the library, eject
    edit.py                vCPUs, memory, maximums, topology, description (live or next start)
    devices.py             attach and detach disks and network interfaces
    move_disk.py           move a disk to another storage domain (block copy or volume copy);
                           move_disk_recovery.py resolves one a crashed manager left running
    _hardware.py           what a host can run: arch, machine, vCPU limit, CPU, nesting, buses
    screen_source.py       how a VM's screen (VNC) is reached: the one interface for all of these

A new VM use case gets its own module here and a field in ``VmServices``.
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.pki import ClusterPki
from corral.services._db import Db
from corral.services.audit import AuditService
from corral.services.cluster_view import ClusterView
from corral.services.events import EventBus
from corral.services.host_paths import HostPathRule
from corral.services.hosts import HostService
from corral.services.images import ImageLibrary
from corral.services.locks import OperationLocks
from corral.services.storage import StorageDomains
from corral.services.storage.driver import AgentCall
from corral.services.tasks import TaskService
from corral.services.vms.clone import VmCloning
from corral.services.vms.console_automation import VmConsole
from corral.services.vms.create import VmCreation
from corral.services.vms.delete import VmDeletion
from corral.services.vms.devices import VmDevices
from corral.services.vms.edit import VmEditing
from corral.services.vms.inventory import VmInventory, vm_info
from corral.services.vms.listing import VmListing
from corral.services.vms.media import VmMedia
from corral.services.vms.move_disk import VmDiskMove
from corral.services.vms.power import VmPower
from corral.services.vms.screen_source import VmScreenSource
from corral.services.vms.screenshot import VmScreenshot
from corral.services.vms.serial import VmSerial
from corral.services.vms.snapshots import VmSnapshots

__all__ = ["VmServices", "vm_info"]


@dataclass(frozen=True)
class VmServices:
    inventory: VmInventory
    listing: VmListing
    create: VmCreation
    power: VmPower
    delete: VmDeletion
    snapshots: VmSnapshots
    clone: VmCloning
    screenshot: VmScreenshot
    serial: VmSerial
    console: VmConsole
    screen_source: VmScreenSource
    media: VmMedia
    edit: VmEditing
    devices: VmDevices
    move_disk: VmDiskMove

    @classmethod
    def build(
        cls,
        db: Db,
        hosts: HostService,
        tasks: TaskService,
        audit: AuditService,
        locks: OperationLocks,
        pki: ClusterPki,
        images: ImageLibrary,
        paths: HostPathRule,
        storage: StorageDomains,
        agent: AgentCall | None = None,
        view: ClusterView | None = None,
        bus: EventBus | None = None,
    ) -> VmServices:
        inventory = VmInventory(db, hosts, view, bus)
        source = VmScreenSource(inventory, pki)
        create = VmCreation(inventory, tasks, audit, locks, images, paths)
        create.storage = storage
        delete = VmDeletion(inventory, locks)
        delete.storage = storage
        return cls(
            inventory=inventory,
            listing=VmListing(inventory),
            create=create,
            power=VmPower(inventory, tasks, audit, locks),
            delete=delete,
            snapshots=VmSnapshots(inventory, locks),
            clone=VmCloning(inventory, tasks, audit, locks),
            screenshot=VmScreenshot(inventory),
            serial=VmSerial(inventory),
            console=VmConsole(source),
            screen_source=source,
            media=VmMedia(inventory, images, locks),
            edit=VmEditing(inventory, locks),
            devices=VmDevices(inventory, locks),
            move_disk=VmDiskMove(inventory, tasks, audit, locks, storage, agent),
        )
