"""VMs: inventory, creation, power operations, snapshots, clones, screen and serial log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from corral.api.deps import Operator, Svc, Viewer
from corral.api.openapi import on_host, problem_responses
from corral.api.params import CursorQuery, LimitQuery, NamePath, NamePrefixQuery, NameQuery
from corral.api.route_table import SHADOW_PREFIX
from corral.model.arch import Arch
from corral.model.cursor import query_digest
from corral.model.image import CdromRequest
from corral.model.page import DEFAULT_LIMIT, Page, VmSort, VmSummary, paged
from corral.model.task import TaskInfo
from corral.model.vm import (
    CloneRequest,
    DeleteRequest,
    ShutdownRequest,
    SnapshotInfo,
    SnapshotRequest,
    VmInfo,
    VmSpec,
    VmState,
)
from corral.services.vms.listing import VmQuery

router = APIRouter(tags=["vms"])

_LOCATION = {
    "Location": {
        "description": "the task's URL: poll it for progress and the outcome",
        "schema": {"type": "string"},
        "required": True,
    }
}
#: The answer of long work: a task, and where to follow it.
ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"description": "the work runs as a task", "model": TaskInfo, "headers": _LOCATION}
}
_STATE = (409, "the VM is in the wrong state for this, or busy with another operation")


def accepted(task: TaskInfo) -> JSONResponse:
    """202 with the task and its URL. A response of its own, so that a route's 2xx model (e.g.
    VmInfo for a create without import) does not apply to it."""
    location = {"Location": f"/api/v1/tasks/{task.id}"}
    return JSONResponse(task.model_dump(mode="json"), status_code=202, headers=location)


@router.get(
    "/vms",
    name="vm.list",
    responses=problem_responses(
        (404, "no such host"), (422, "a limit out of range, or a cursor of another query")
    ),
)
async def list_vms(
    svc: Svc,
    _: Viewer,
    host: NameQuery = None,
    state: VmState | None = None,
    name_prefix: NamePrefixQuery = None,
    arch: Arch | None = None,
    sort: VmSort = VmSort.NAME,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[VmInfo]:
    """A page of VMs, filtered and sorted; follow ``next_cursor`` for the next one."""
    query = VmQuery(host, state, name_prefix, arch, sort, limit, cursor)
    return await svc.vms.listing.page(query)


@router.get("/vms/summary", name="vm.summary")
async def vm_summary(svc: Svc, _: Viewer) -> VmSummary:
    """How many VMs there are, by runtime state and by host (the dashboard's counts)."""
    return await svc.vms.listing.summary()


@router.api_route(
    "/vms/summary",
    methods=["DELETE", "PATCH"],
    name=f"{SHADOW_PREFIX}vm.summary",
    include_in_schema=False,
)
async def not_a_vm(_: Viewer) -> None:
    """``/vms/summary`` is the counts, not a VM named "summary" (list that one with
    ``?name_prefix=summary``): refused here rather than taken by ``/vms/{name}``."""
    raise HTTPException(405)


@router.post(
    "/vms",
    name="vm.create",
    status_code=201,
    response_model=VmInfo,
    responses={
        **ACCEPTED,
        **on_host(
            (
                403,
                "the role lacks the right, or a host path is not the caller's to name "
                "(non-admins never; admins under host_path_roots)",
            ),
            (404, "no such host, base image or file (ISO, kernel, initrd, image to import)"),
            (422, "malformed, or an image Corral refuses (qcow2 data file, backing file…)"),
            (409, "the name is taken, or the host lacks memory, vCPUs, disk space or KVM"),
        ),
    },
)
async def create_vm(spec: VmSpec, request: Request, svc: Svc, who: Operator) -> VmInfo | Response:
    request.state.audit_target = spec.name
    result = await svc.vms.create.create(who, spec)
    if isinstance(result, TaskInfo):
        return accepted(result)
    return result


@router.get("/vms/{name}", name="vm.show", responses=on_host())
async def show_vm(name: NamePath, svc: Svc, _: Viewer) -> VmInfo:
    return await svc.vms.inventory.get(name)


@router.delete(
    "/vms/{name}",
    name="vm.delete",
    status_code=204,
    responses={
        204: {
            "description": "deleted",
            "headers": {
                "Corral-Notes": {
                    "description": "what was left behind, e.g. disks still used by clones",
                    "schema": {"type": "string"},
                }
            },
        },
        **on_host(_STATE),
    },
)
async def delete_vm(
    name: NamePath, svc: Svc, who: Operator, delete_disks: bool = False
) -> Response:
    notes = await svc.vms.delete.delete(who, name, DeleteRequest(delete_disks=delete_disks))
    headers = {"Corral-Notes": "; ".join(notes)} if notes else None
    return Response(status_code=204, headers=headers)


@router.post("/vms/{name}/start", name="vm.start", responses=on_host(_STATE))
async def start_vm(name: NamePath, svc: Svc, who: Operator) -> VmInfo:
    return await svc.vms.power.start(who, name)


@router.post(
    "/vms/{name}/shutdown",
    name="vm.shutdown",
    status_code=202,
    response_model=TaskInfo,
    responses={**ACCEPTED, **on_host(_STATE)},
)
async def shutdown_vm(
    name: NamePath, svc: Svc, who: Operator, body: ShutdownRequest | None = None
) -> Response:
    task = await svc.vms.power.shutdown(who, name, body or ShutdownRequest())
    return accepted(task)


@router.post("/vms/{name}/stop", name="vm.stop", responses=on_host(_STATE))
async def stop_vm(name: NamePath, svc: Svc, who: Operator) -> VmInfo:
    return await svc.vms.power.stop(who, name)


@router.post("/vms/{name}/reboot", name="vm.reboot", responses=on_host(_STATE))
async def reboot_vm(name: NamePath, svc: Svc, who: Operator) -> VmInfo:
    return await svc.vms.power.reboot(who, name)


@router.post("/vms/{name}/pause", name="vm.pause", responses=on_host(_STATE))
async def pause_vm(name: NamePath, svc: Svc, who: Operator) -> VmInfo:
    return await svc.vms.power.pause(who, name)


@router.post("/vms/{name}/resume", name="vm.resume", responses=on_host(_STATE))
async def resume_vm(name: NamePath, svc: Svc, who: Operator) -> VmInfo:
    return await svc.vms.power.resume(who, name)


@router.post(
    "/vms/{name}/cdrom",
    name="vm.cdrom",
    responses=on_host(
        (404, "no such VM, or no such image on the VM's host"),
        (
            409,
            "a running VM without a CD-ROM drive, an image of another host or a disk image, "
            "or the VM or image is busy",
        ),
    ),
)
async def change_cdrom(name: NamePath, body: CdromRequest, svc: Svc, who: Operator) -> VmInfo:
    """Insert an ISO image of the VM's host into its CD-ROM drive (``{"image": NAME}``) or
    eject it (``{"eject": true}``), running or shut off. A shut-off VM without a drive gets
    one (SATA); a running one is refused: CD-ROM drives cannot be hot-plugged."""
    return await svc.vms.media.change(who, name, body)


@router.get("/vms/{name}/snapshots", name="vm.snapshot.list", responses=on_host())
async def list_snapshots(
    name: NamePath,
    svc: Svc,
    _: Viewer,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[SnapshotInfo]:
    """The VM's snapshots, oldest first, a page at a time."""
    snapshots = await svc.vms.snapshots.list_snapshots(name)
    return paged(
        snapshots,
        lambda s: (s.created_at.isoformat(), s.name),
        digest=query_digest("snapshots", vm=name),
        limit=limit,
        cursor=cursor,
        arity=2,
    )


@router.post(
    "/vms/{name}/snapshots",
    name="vm.snapshot.create",
    status_code=201,
    responses=on_host((409, "the snapshot name is taken, or the VM is busy or cannot snapshot")),
)
async def create_snapshot(
    name: NamePath, body: SnapshotRequest, svc: Svc, who: Operator
) -> SnapshotInfo:
    return await svc.vms.snapshots.create(who, name, body)


@router.post(
    "/vms/{name}/snapshots/{snap}/revert", name="vm.snapshot.revert", responses=on_host(_STATE)
)
async def revert_snapshot(name: NamePath, snap: NamePath, svc: Svc, who: Operator) -> VmInfo:
    return await svc.vms.snapshots.revert(who, name, snap)


@router.delete(
    "/vms/{name}/snapshots/{snap}",
    name="vm.snapshot.delete",
    status_code=204,
    responses=on_host(_STATE),
)
async def delete_snapshot(name: NamePath, snap: NamePath, svc: Svc, who: Operator) -> Response:
    await svc.vms.snapshots.delete(who, name, snap)
    return Response(status_code=204)


@router.post(
    "/vms/{name}/clone",
    name="vm.clone",
    status_code=202,
    response_model=TaskInfo,
    responses={
        **ACCEPTED,
        **on_host(
            (
                409,
                "the clone's name is taken, or the source is not shut off, has snapshots, "
                "or has disks outside Corral's pool",
            ),
        ),
    },
)
async def clone_vm(name: NamePath, body: CloneRequest, svc: Svc, who: Operator) -> Response:
    return accepted(await svc.vms.clone.clone(who, name, body))


@router.get(
    "/vms/{name}/screenshot",
    name="vm.screenshot",
    response_class=Response,
    responses={
        200: {
            "description": "the screen as a PNG image",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        },
        **on_host((409, "the VM is not running")),
    },
)
async def screenshot(name: NamePath, svc: Svc, _: Viewer) -> Response:
    png = await svc.vms.screenshot.png(name)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get(
    "/vms/{name}/log",
    name="vm.log",
    response_class=Response,
    responses={
        200: {
            "description": "the serial console's log (its last `tail_lines` lines, or its last "
            "`tail_bytes` bytes)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **on_host(),
    },
)
async def serial_log(
    name: NamePath,
    svc: Svc,
    _: Viewer,
    tail_bytes: Annotated[
        int | None, Query(ge=1, le=64 * 1024 * 1024, description="only the last N bytes")
    ] = None,
    tail_lines: Annotated[
        int | None,
        Query(ge=1, le=1_000_000, description="only the last N lines (not with tail_bytes)"),
    ] = None,
) -> Response:
    data = await svc.vms.serial.log(name, tail_bytes, tail_lines)
    return Response(data, media_type="text/plain; charset=utf-8")
