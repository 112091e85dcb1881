"""Changing a VM after its creation: edit (vCPUs, memory, maximums, topology, description),
attach and detach disks and network interfaces. Every answer says how the change reached the VM
(``applied``: live, next_start or offline) and shows the VM. Moving a disk to another storage
domain is a task (202)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from corral.api.deps import Operator, Svc
from corral.api.openapi import on_host
from corral.api.params import NamePath
from corral.api.routers.vms import ACCEPTED, accepted
from corral.model.disk_move import DiskMoveRequest
from corral.model.task import TaskInfo
from corral.model.vm_edit import ChangeMode, DiskAttachRequest, NicAttachRequest, VmChange, VmEdit

router = APIRouter(tags=["vms"])

MAC_PATTERN = r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$"
MacPath = Annotated[str, Path(pattern=MAC_PATTERN, description="the interface's MAC address")]
ModeQuery = Annotated[
    ChangeMode | None,
    Query(description="live: now, refused where the running VM cannot take it; next_start: "
          "when the VM is next started. Default: live where possible"),
]  # fmt: skip


def _audit(request: Request, change: VmChange) -> VmChange:
    request.state.audit_detail = f"{change.applied.value}: {'; '.join(change.changes)}"
    return change


@router.patch(
    "/vms/{name}",
    name="vm.edit",
    responses=on_host(
        (
            409,
            "the change cannot be made: above the host's vCPU or memory limit, live above the "
            "maximum set at creation or not possible live (mode live), a topology that no "
            "longer fits, or the VM is busy",
        )
    ),
)
async def edit_vm(
    name: NamePath, body: VmEdit, request: Request, svc: Svc, who: Operator
) -> VmChange:
    """Change vCPUs and memory (live within the maximums set at creation, else at the next
    start), the maximums and CPU topology (next start), or the description."""
    return _audit(request, await svc.vms.edit.edit(who, name, body))


@router.post(
    "/vms/{name}/disks",
    name="vm.disk.attach",
    responses=on_host(
        (404, "no such VM, volume or base image"),
        (
            409,
            "a disk of that name exists, the volume is used by a VM, the bus does not exist for "
            "the architecture or cannot be hot-plugged (mode live), or the VM is busy",
        ),
    ),
)
async def attach_disk(
    name: NamePath, body: DiskAttachRequest, request: Request, svc: Svc, who: Operator
) -> VmChange:
    """Add a disk: a new blank one, a linked clone, or an unused volume of Corral's pool.
    virtio and SCSI disks go into a running VM at once; SATA and IDE at its next start."""
    return _audit(request, await svc.vms.devices.attach_disk(who, name, body))


@router.delete(
    "/vms/{name}/disks/{disk}",
    name="vm.disk.detach",
    responses=on_host(
        (404, "no such VM, or no such disk in it"),
        (
            409,
            "the boot disk of a running VM, a CD-ROM drive, a bus that cannot be hot-plugged "
            "(mode live), a volume the running VM still uses (delete_volume), or the VM is busy",
        ),
    ),
)
async def detach_disk(
    name: NamePath,
    disk: NamePath,
    request: Request,
    svc: Svc,
    who: Operator,
    mode: ModeQuery = None,
    delete_volume: Annotated[
        bool, Query(description="also delete the disk's volume (never a linked clone's base)")
    ] = False,
) -> VmChange:
    """Remove a disk (by name or target, e.g. ``data`` or ``vdb``); its volume stays unless
    ``delete_volume``."""
    change = await svc.vms.devices.detach_disk(who, name, disk, mode, delete_volume)
    return _audit(request, change)


@router.post(
    "/vms/{name}/disks/{disk}/move",
    name="vm.disk.move",
    status_code=202,
    response_model=TaskInfo,
    responses={
        **ACCEPTED,
        **on_host(
            (404, "no such VM, disk (by name or target) or storage domain"),
            (
                409,
                "a CD-ROM drive, the VM has snapshots, its host does not reach the domain, the "
                "disk is on that domain already, the domain lacks the free space or takes no "
                "new volumes (iscsi), or the VM is busy",
            ),
        ),
    },
)
async def move_disk(
    name: NamePath, disk: NamePath, body: DiskMoveRequest, svc: Svc, who: Operator
) -> Response:
    """Move a disk (by name or target) to another storage domain its VM's host reaches: live
    by block copy while the VM runs (the guest keeps writing), or a copy of the volume on the
    host while it is shut off (libvirt between pools, the host agent to and from nfs). The old
    volume is deleted afterwards unless ``keep_source``."""
    return accepted(await svc.vms.move_disk.move(who, name, disk, body))


@router.post(
    "/vms/{name}/nics",
    name="vm.nic.attach",
    responses=on_host(
        (404, "no such VM or network"),
        (409, "the MAC is taken, the model does not exist for the architecture, or the VM is busy"),
    ),
)
async def attach_nic(
    name: NamePath, body: NicAttachRequest, request: Request, svc: Svc, who: Operator
) -> VmChange:
    """Add a network interface (plugged into a running VM at once)."""
    return _audit(request, await svc.vms.devices.attach_nic(who, name, body))


@router.delete(
    "/vms/{name}/nics/{mac}",
    name="vm.nic.detach",
    responses=on_host(
        (404, "no such VM, or no interface with that MAC"),
        (409, "the VM is busy, or the interface leaves at the next start already"),
    ),
)
async def detach_nic(
    name: NamePath, mac: MacPath, request: Request, svc: Svc, who: Operator, mode: ModeQuery = None
) -> VmChange:
    """Remove a network interface."""
    return _audit(request, await svc.vms.devices.detach_nic(who, name, mac, mode))
