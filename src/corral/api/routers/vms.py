"""VMs: inventory, creation, power operations, snapshots, clones, screen and serial log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from corral.api.deps import Operator, Svc, Viewer
from corral.model.image import CdromRequest
from corral.model.task import TaskInfo
from corral.model.vm import (
    CloneRequest,
    DeleteRequest,
    ShutdownRequest,
    SnapshotInfo,
    SnapshotRequest,
    VmInfo,
    VmSpec,
)

router = APIRouter(tags=["vms"])


def accepted(response: Response, task: TaskInfo) -> TaskInfo:
    response.status_code = 202
    response.headers["Location"] = f"/api/v1/tasks/{task.id}"
    return task


@router.get("/vms", name="vm.list")
async def list_vms(svc: Svc, _: Viewer, host: str | None = None) -> list[VmInfo]:
    return await svc.vms.inventory.list_vms(host)


@router.post(
    "/vms",
    name="vm.create",
    status_code=201,
    responses={202: {"model": TaskInfo, "description": "a disk is imported: a task"}},
)
async def create_vm(
    spec: VmSpec, request: Request, response: Response, svc: Svc, who: Operator
) -> VmInfo | TaskInfo:
    request.state.audit_target = spec.name
    result = await svc.vms.create.create(who, spec)
    if isinstance(result, TaskInfo):
        return accepted(response, result)
    return result


@router.get("/vms/{name}", name="vm.show")
async def show_vm(name: str, svc: Svc, _: Viewer) -> VmInfo:
    return await svc.vms.inventory.get(name)


@router.delete("/vms/{name}", name="vm.delete", status_code=204)
async def delete_vm(name: str, svc: Svc, who: Operator, delete_disks: bool = False) -> Response:
    notes = await svc.vms.delete.delete(who, name, DeleteRequest(delete_disks=delete_disks))
    headers = {"Corral-Notes": "; ".join(notes)} if notes else None
    return Response(status_code=204, headers=headers)


@router.post("/vms/{name}/start", name="vm.start")
async def start_vm(name: str, svc: Svc, who: Operator) -> VmInfo:
    return await svc.vms.power.start(who, name)


@router.post("/vms/{name}/shutdown", name="vm.shutdown", status_code=202)
async def shutdown_vm(
    name: str, response: Response, svc: Svc, who: Operator, body: ShutdownRequest | None = None
) -> TaskInfo:
    task = await svc.vms.power.shutdown(who, name, body or ShutdownRequest())
    return accepted(response, task)


@router.post("/vms/{name}/stop", name="vm.stop")
async def stop_vm(name: str, svc: Svc, who: Operator) -> VmInfo:
    return await svc.vms.power.stop(who, name)


@router.post("/vms/{name}/reboot", name="vm.reboot")
async def reboot_vm(name: str, svc: Svc, who: Operator) -> VmInfo:
    return await svc.vms.power.reboot(who, name)


@router.post("/vms/{name}/pause", name="vm.pause")
async def pause_vm(name: str, svc: Svc, who: Operator) -> VmInfo:
    return await svc.vms.power.pause(who, name)


@router.post("/vms/{name}/resume", name="vm.resume")
async def resume_vm(name: str, svc: Svc, who: Operator) -> VmInfo:
    return await svc.vms.power.resume(who, name)


@router.post(
    "/vms/{name}/cdrom",
    name="vm.cdrom",
    responses={
        409: {"description": "a running VM without a CD-ROM drive, or the VM or image is busy"},
        422: {"description": "an unknown image, one of another host, or a disk image"},
    },
)
async def change_cdrom(name: str, body: CdromRequest, svc: Svc, who: Operator) -> VmInfo:
    """Insert an ISO image of the VM's host into its CD-ROM drive (``{"image": NAME}``) or
    eject it (``{"eject": true}``), running or shut off. A shut-off VM without a drive gets
    one (SATA); a running one is refused: CD-ROM drives cannot be hot-plugged."""
    return await svc.vms.media.change(who, name, body)


@router.get("/vms/{name}/snapshots", name="vm.snapshot.list")
async def list_snapshots(name: str, svc: Svc, _: Viewer) -> list[SnapshotInfo]:
    return await svc.vms.snapshots.list_snapshots(name)


@router.post("/vms/{name}/snapshots", name="vm.snapshot.create", status_code=201)
async def create_snapshot(
    name: str, body: SnapshotRequest, svc: Svc, who: Operator
) -> SnapshotInfo:
    return await svc.vms.snapshots.create(who, name, body)


@router.post("/vms/{name}/snapshots/{snap}/revert", name="vm.snapshot.revert")
async def revert_snapshot(name: str, snap: str, svc: Svc, who: Operator) -> VmInfo:
    return await svc.vms.snapshots.revert(who, name, snap)


@router.delete("/vms/{name}/snapshots/{snap}", name="vm.snapshot.delete", status_code=204)
async def delete_snapshot(name: str, snap: str, svc: Svc, who: Operator) -> Response:
    await svc.vms.snapshots.delete(who, name, snap)
    return Response(status_code=204)


@router.post("/vms/{name}/clone", name="vm.clone", status_code=202)
async def clone_vm(
    name: str, body: CloneRequest, response: Response, svc: Svc, who: Operator
) -> TaskInfo:
    return accepted(response, await svc.vms.clone.clone(who, name, body))


@router.get(
    "/vms/{name}/screenshot",
    name="vm.screenshot",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def screenshot(name: str, svc: Svc, _: Viewer) -> Response:
    png = await svc.vms.screenshot.png(name)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get(
    "/vms/{name}/log",
    name="vm.log",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def serial_log(
    name: str,
    svc: Svc,
    _: Viewer,
    tail_bytes: Annotated[int | None, Query(ge=1, le=64 * 1024 * 1024)] = None,
) -> Response:
    data = await svc.vms.serial.log(name, tail_bytes)
    return Response(data, media_type="text/plain; charset=utf-8")
