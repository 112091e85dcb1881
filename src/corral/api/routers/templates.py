"""Templates: made from a shut-off VM, listed, shown, deleted, and new VMs made from them."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from corral.api.deps import Operator, Svc, Viewer
from corral.api.openapi import on_host, problem_responses
from corral.api.params import NamePath
from corral.api.routers.vms import ACCEPTED, accepted
from corral.cloudinit.model import CloudInitConfig, CloudInitInfo
from corral.model.task import TaskInfo
from corral.model.template import (
    TemplateCreate,
    TemplateImport,
    TemplateInfo,
    TemplateVmRequest,
)

router = APIRouter(tags=["templates"])


@router.get("/templates", name="template.list")
async def list_templates(svc: Svc, _: Viewer) -> list[TemplateInfo]:
    return await svc.templates.all()


@router.post(
    "/templates",
    name="template.create",
    status_code=201,
    responses=on_host(
        (404, "no such VM"),
        (
            409,
            "the name is taken, or the VM is not shut off, has snapshots, no disk, or disks "
            "outside Corral's pool",
        ),
    ),
)
async def create_template(
    body: TemplateCreate, request: Request, svc: Svc, who: Operator
) -> TemplateInfo:
    """Make a template of a shut-off VM: its disks become read-only bases on its host, and
    the VM goes on running on an overlay of each."""
    request.state.audit_target = body.name
    request.state.audit_detail = f"from VM {body.from_vm}"
    return await svc.templates.create(who, body)


@router.post(
    "/template-imports",
    name="template.import",
    status_code=201,
    responses=on_host(
        (404, "no such image"),
        (
            409,
            "the name is taken, the image is not a disk image, is on a shared domain or on "
            "several hosts, or the host cannot run the settings",
        ),
    ),
)
async def import_template(
    body: TemplateImport, request: Request, svc: Svc, who: Operator
) -> TemplateInfo:
    """Make a template of a disk image of a host's library (a cloud image, qcow2 or raw):
    the image is its base as it is, the definition is made from the body's settings."""
    request.state.audit_target = body.name
    request.state.audit_detail = f"from image {body.image}"
    return await svc.templates.import_image(who, body)


@router.get("/templates/{name}", name="template.show", responses=on_host())
async def show_template(name: NamePath, svc: Svc, _: Viewer) -> TemplateInfo:
    return await svc.templates.show(name)


@router.delete(
    "/templates/{name}",
    name="template.delete",
    status_code=204,
    responses=on_host((409, "VMs or volumes still stand on the template's bases")),
)
async def delete_template(name: NamePath, svc: Svc, _who: Operator) -> Response:
    """Delete a template and its base volumes; refused while anything stands on them."""
    await svc.templates.delete(name)
    return Response(status_code=204)


@router.post(
    "/templates/{name}/vms",
    name="template.vm.create",
    status_code=202,
    response_model=TaskInfo,
    responses={
        **ACCEPTED,
        **problem_responses(
            (404, "no such template"),
            (409, "the VM name is taken, or the template's host cannot take new VMs"),
            (422, "malformed, or user-data that is not valid cloud-config (cloud-init's words)"),
        ),
    },
)
async def create_vm_from_template(
    name: NamePath, body: TemplateVmRequest, request: Request, svc: Svc, who: Operator
) -> Response:
    """A new VM from the template, on the template's host: a linked clone (an overlay per
    disk, instant) or a full copy (as long as the data takes). A task: follow it for the
    outcome."""
    request.state.audit_target = body.name
    request.state.audit_detail = f"from template {name}, {body.clone.value} clone"
    return accepted(await svc.templates.new_vm(who, name, body))


@router.get(
    "/vms/{name}/cloud-init",
    name="vm.cloud_init.show",
    responses=problem_responses((404, "no such VM, or it has no cloud-init settings")),
)
async def show_cloud_init(name: NamePath, svc: Svc, _: Viewer) -> CloudInitInfo:
    """A VM's cloud-init settings: never a password, its hash or the user-data (the
    user-data's SHA-256 and size instead), and who set them when."""
    return await svc.templates.cloud_init(name)


@router.put(
    "/vms/{name}/cloud-init",
    name="vm.cloud_init.replace",
    responses=on_host(
        (404, "no such VM"),
        (409, "the VM is not shut off, or it has no cloud-init seed"),
        (422, "malformed, or user-data that is not valid cloud-config (cloud-init's words)"),
    ),
)
async def replace_cloud_init(
    name: NamePath, body: CloudInitConfig, request: Request, svc: Svc, who: Operator
) -> CloudInitInfo:
    """Replace a shut-off VM's cloud-init settings as a whole (what the body leaves out is
    gone) and write its seed again with a new instance ID: the guest applies them at its next
    boot. The user-data is checked first and, as ever, never shown again."""
    request.state.audit_target = name
    request.state.audit_detail = "cloud-init settings replaced"
    return await svc.templates.replace_cloud_init(who, name, body)
