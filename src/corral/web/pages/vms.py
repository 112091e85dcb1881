"""A VM's page: specs, disks, NICs, snapshots, tasks, serial log, and its actions."""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from corral.errors import CorralError, InvalidRequest
from corral.http.validation import validation_items
from corral.model.disk_move import DiskMoveRequest
from corral.model.ha import DEFAULT_PRIORITY, VmHaRequest
from corral.model.image import CdromRequest, ImageInfo, ImageKind
from corral.model.migration import MigrationRequest
from corral.model.vm import DeleteRequest, ShutdownRequest, SnapshotRequest, VmState
from corral.model.vm_edit import ChangeMode, DiskAttachRequest, NicAttachRequest, VmChange, VmEdit
from corral.services.principal import Principal
from corral.services.runtime import Services
from corral.web.form_numbers import gib_error, mib_error, whole_error
from corral.web.page_auth import PageOperator, PageViewer
from corral.web.pages.vm_disks import disk_storage
from corral.web.templating import render

router = APIRouter(include_in_schema=False)

#: Terminal control sequences in the serial log, stripped for display.
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]|\r")
LOG_TAIL_BYTES = 16 * 1024


async def _context(svc: Services, name: str) -> dict[str, Any]:
    vm = await svc.vms.inventory.get(name)
    snapshots: list[Any] = []
    images: list[ImageInfo] = []
    note = ""
    if vm.state not in (VmState.MISSING, VmState.UNKNOWN):
        try:
            snapshots = await svc.vms.snapshots.list_snapshots(name)
            images = await svc.images.list_images(vm.host)
        except CorralError as exc:
            note = exc.message
    tasks = await _tasks_of(svc, name)
    return {
        "vm": vm,
        "cluster_networks": [n.name for n in await svc.networks.list_networks()],
        "snapshots": snapshots,
        "snapshot_note": note,
        "tasks": tasks,
        "isos": [i for i in images if i.kind is ImageKind.ISO],
        "image_names": {i.path: i.name for i in images},
        **await disk_storage(svc, vm),
        **await _migration_choices(svc, vm.host),
    }


async def _tasks_of(svc: Services, name: str) -> list[Any]:
    """The VM's ten latest tasks."""
    return [t for t in await svc.tasks.list_tasks(limit=200) if t.target == name][:10]


async def _migration_choices(svc: Services, current: str) -> dict[str, Any]:
    """Where the VM could go (connected hosts outside maintenance) and how (the transports
    a migration may ask for now): the Migrate form's choices; the API checks the rest."""
    hosts = [
        h.name
        for h in svc.hosts.all()
        if h.name != current and h.connected and not svc.hosts.in_maintenance(h.name)
    ]
    transports = [
        (t.name, t.description)
        for t in await svc.migrations.migrate.transport_choices()
        if t.allowed
    ]
    return {"migrate_hosts": hosts, "migrate_transports": transports}


def _log_text(raw: bytes) -> str:
    return _ANSI.sub(b"", raw).decode("utf-8", "replace")


@router.get("/vms/{name}", name="ui.vm")
async def vm_page(request: Request, name: str, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "vm.html", {"active": "dashboard", **await _context(svc, name)})


@router.get("/ui/fragments/vms/{name}", name="ui.fragment.vm")
async def vm_fragment(request: Request, name: str, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "fragments/vm_detail.html", await _context(svc, name))


@router.get("/ui/fragments/vms/{name}/tasks", name="ui.fragment.vm_tasks")
async def vm_tasks(request: Request, name: str, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "fragments/task_list.html", {"tasks": await _tasks_of(svc, name)})


@router.get("/ui/fragments/vms/{name}/log", name="ui.fragment.vm_log")
async def vm_log(request: Request, name: str, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    try:
        raw = await svc.vms.serial.log(name, LOG_TAIL_BYTES)
    except CorralError as exc:
        return HTMLResponse(html.escape(f"(no serial log: {exc.message})"))
    return HTMLResponse(html.escape(_log_text(raw)))


Action = Callable[[Services, Principal, str], Awaitable[object]]

_ACTIONS: dict[str, Action] = {
    "start": lambda svc, who, name: svc.vms.power.start(who, name),
    "stop": lambda svc, who, name: svc.vms.power.stop(who, name),
    "reboot": lambda svc, who, name: svc.vms.power.reboot(who, name),
    "pause": lambda svc, who, name: svc.vms.power.pause(who, name),
    "resume": lambda svc, who, name: svc.vms.power.resume(who, name),
    "shutdown": lambda svc, who, name: svc.vms.power.shutdown(who, name, ShutdownRequest()),
}


def _action_route(action: str) -> None:
    async def run(request: Request, name: str, who: PageOperator) -> HTMLResponse:
        svc: Services = request.app.state.services
        await _ACTIONS[action](svc, who, name)
        return render(request, "fragments/vm_detail.html", await _context(svc, name))

    run.__name__ = f"vm_{action}"
    router.add_api_route(
        f"/ui/vms/{{name}}/{action}", run, methods=["POST"], name=f"ui.vm.{action}"
    )


for _action in _ACTIONS:
    _action_route(_action)


@router.post("/ui/vms/{name}/migrate", name="ui.vm.migrate")
async def migrate_vm(
    request: Request,
    name: str,
    who: PageOperator,
    to: Annotated[str, Form(max_length=63)],
    transport: Annotated[str, Form(max_length=32)] = "tls",
) -> HTMLResponse:
    """Start a live migration (a task: its progress shows in the page's task list)."""
    svc: Services = request.app.state.services
    await svc.migrations.migrate.start(who, name, MigrationRequest(to=to, transport=transport))
    return render(request, "fragments/vm_detail.html", await _context(svc, name))


@router.post("/ui/vms/{name}/delete", name="ui.vm.delete")
async def delete_vm(request: Request, name: str, who: PageOperator) -> Response:
    svc: Services = request.app.state.services
    await svc.vms.delete.delete(who, name, DeleteRequest(delete_disks=True))
    return Response(status_code=204, headers={"HX-Redirect": "/"})


@router.post("/ui/vms/{name}/cdrom", name="ui.vm.cdrom")
async def change_cdrom(
    request: Request,
    name: str,
    who: PageOperator,
    image: Annotated[str, Form(max_length=63)] = "",
    eject: Annotated[str, Form(max_length=1)] = "",
) -> HTMLResponse:
    svc: Services = request.app.state.services
    req = CdromRequest(eject=True) if eject == "1" else CdromRequest(image=image or None)
    await svc.vms.media.change(who, name, req)
    return render(request, "fragments/vm_detail.html", await _context(svc, name))


@router.post("/ui/vms/{name}/snapshots", name="ui.vm.snapshot.create")
async def create_snapshot(
    request: Request,
    name: str,
    who: PageOperator,
    snapshot: Annotated[str, Form(alias="name", max_length=63)],
    description: Annotated[str, Form(max_length=1024)] = "",
) -> HTMLResponse:
    svc: Services = request.app.state.services
    req = SnapshotRequest(name=snapshot, description=description)
    await svc.vms.snapshots.create(who, name, req)
    return render(request, "fragments/vm_detail.html", await _context(svc, name))


@router.post("/ui/vms/{name}/snapshots/{snap}/revert", name="ui.vm.snapshot.revert")
async def revert_snapshot(
    request: Request, name: str, snap: str, who: PageOperator
) -> HTMLResponse:
    svc: Services = request.app.state.services
    await svc.vms.snapshots.revert(who, name, snap)
    return render(request, "fragments/vm_detail.html", await _context(svc, name))


@router.post("/ui/vms/{name}/snapshots/{snap}/delete", name="ui.vm.snapshot.delete")
async def delete_snapshot(
    request: Request, name: str, snap: str, who: PageOperator
) -> HTMLResponse:
    svc: Services = request.app.state.services
    await svc.vms.snapshots.delete(who, name, snap)
    return render(request, "fragments/vm_detail.html", await _context(svc, name))


# -- changes: edit, disks, NICs --------------------------------------------------------------
_APPLIED = {
    "live": "live",
    "next_start": "at the VM's next start (shut it down, then start it)",
    "offline": "in its definition",
}


def _blank_none(value: str) -> str | None:
    return value.strip() or None


def _mode(value: str) -> ChangeMode | None:
    return ChangeMode(value) if value in {m.value for m in ChangeMode} else None


def _numbers(**fields: tuple[str, Callable[[str], str | None]]) -> None:
    """422 for the first form number that does not read strictly (see ``form_numbers``)."""
    for what, (text, problem) in fields.items():
        if (why := problem(text)) is not None:
            raise InvalidRequest(f"{what}: {why}")


def _checked(build: Callable[[], Any]) -> Any:
    """Build a request model from form fields; its complaints as one 422 sentence."""
    try:
        return build()
    except ValidationError as exc:
        items = validation_items(exc.errors())
        raise InvalidRequest("; ".join(f"{i['loc']}: {i['msg']}" for i in items)) from None


async def _changed(request: Request, svc: Services, name: str, change: VmChange) -> HTMLResponse:
    request.state.audit_detail = f"{change.applied.value}: {'; '.join(change.changes)}"
    what = "; ".join(change.changes) or "nothing changed"
    notice = f"{what} — {_APPLIED[change.applied.value]}"
    context = {**await _context(svc, name), "notice": notice}
    return render(request, "fragments/vm_detail.html", context)


@router.post("/ui/vms/{name}/ha", name="ui.vm.ha")
async def set_ha(
    request: Request,
    name: str,
    who: PageOperator,
    enabled: Annotated[str, Form(max_length=1)] = "",
    priority: Annotated[str, Form(max_length=8)] = "50",
) -> HTMLResponse:
    """HA on or off (the API's checks: a disk on local storage is refused in words)."""
    svc: Services = request.app.state.services
    _numbers(priority=(priority, whole_error))
    level = int(priority.strip() or DEFAULT_PRIORITY)
    body = _checked(lambda: VmHaRequest(enabled=enabled == "1", priority=level))
    info = await svc.ha.definitions.configure(who, name, body)
    said = f"on, priority {info.priority}" if info.enabled else "off"
    request.state.audit_detail = said
    context = {**await _context(svc, name), "notice": f"high availability {said}"}
    return render(request, "fragments/vm_detail.html", context)


@router.post("/ui/vms/{name}/edit", name="ui.vm.edit")
async def edit_vm(
    request: Request,
    name: str,
    who: PageOperator,
    vcpus: Annotated[str, Form(max_length=8)] = "",
    memory_mib: Annotated[str, Form(max_length=12)] = "",
    description: Annotated[str | None, Form(max_length=1024)] = None,
    mode: Annotated[str, Form(max_length=16)] = "",
) -> HTMLResponse:
    svc: Services = request.app.state.services
    _numbers(vcpus=(vcpus, whole_error), memory_mib=(memory_mib, mib_error))
    body = _checked(lambda: VmEdit.model_validate({
        "vcpus": _blank_none(vcpus), "memory_mib": _blank_none(memory_mib),
        "description": description, "mode": _mode(mode),
    }))  # fmt: skip
    return await _changed(request, svc, name, await svc.vms.edit.edit(who, name, body))


@router.post("/ui/vms/{name}/disks", name="ui.vm.disk.attach")
async def attach_disk(
    request: Request,
    name: str,
    who: PageOperator,
    disk: Annotated[str, Form(max_length=63)],
    size_gib: Annotated[str, Form(max_length=12)] = "1",
    bus: Annotated[str, Form(max_length=8)] = "virtio",
    mode: Annotated[str, Form(max_length=16)] = "",
) -> HTMLResponse:
    svc: Services = request.app.state.services
    _numbers(size_gib=(size_gib, gib_error))
    body = _checked(lambda: DiskAttachRequest.model_validate(
        {"name": disk, "size_gib": _blank_none(size_gib), "bus": bus, "mode": _mode(mode)}
    ))  # fmt: skip
    return await _changed(request, svc, name, await svc.vms.devices.attach_disk(who, name, body))


@router.post("/ui/vms/{name}/disks/{disk}/detach", name="ui.vm.disk.detach")
async def detach_disk(request: Request, name: str, disk: str, who: PageOperator) -> HTMLResponse:
    svc: Services = request.app.state.services
    change = await svc.vms.devices.detach_disk(who, name, disk, None, False)
    return await _changed(request, svc, name, change)


@router.post("/ui/vms/{name}/disks/{disk}/move", name="ui.vm.disk.move")
async def move_disk(
    request: Request,
    name: str,
    disk: str,
    who: PageOperator,
    to: Annotated[str, Form(max_length=63)],
    keep_source: Annotated[str, Form(max_length=1)] = "",
    bandwidth_mib_s: Annotated[str, Form(max_length=12)] = "",
) -> HTMLResponse:
    """Move a disk to another storage domain, as a task (its progress in bytes shows in the
    page's task list); refusals come back as the API's sentences."""
    svc: Services = request.app.state.services
    _numbers(bandwidth_mib_s=(bandwidth_mib_s, whole_error))
    body = _checked(lambda: DiskMoveRequest.model_validate({
        "to": to, "keep_source": keep_source == "1",
        "bandwidth_mib_s": _blank_none(bandwidth_mib_s),
    }))  # fmt: skip
    task = await svc.vms.move_disk.move(who, name, disk, body)
    notice = f"moving disk {disk} to storage domain {to}: {task.phase} (progress under Tasks)"
    context = {**await _context(svc, name), "notice": notice}
    return render(request, "fragments/vm_detail.html", context)


@router.post("/ui/vms/{name}/nics", name="ui.vm.nic.attach")
async def attach_nic(
    request: Request,
    name: str,
    who: PageOperator,
    network: Annotated[str, Form(max_length=63)] = "nat",
    model: Annotated[str, Form(max_length=16)] = "virtio",
) -> HTMLResponse:
    svc: Services = request.app.state.services
    body = _checked(lambda: NicAttachRequest.model_validate({"network": network, "model": model}))
    return await _changed(request, svc, name, await svc.vms.devices.attach_nic(who, name, body))


@router.post("/ui/vms/{name}/nics/{mac}/detach", name="ui.vm.nic.detach")
async def detach_nic(request: Request, name: str, mac: str, who: PageOperator) -> HTMLResponse:
    svc: Services = request.app.state.services
    change = await svc.vms.devices.detach_nic(who, name, mac, None)
    return await _changed(request, svc, name, change)
