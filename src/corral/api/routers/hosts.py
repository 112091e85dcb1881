"""Hosts: list, show, add by URI, enroll (over SSH or as a bundle), maintenance, certificate
rotation, remove."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from corral.api.deps import Admin, Svc, Viewer
from corral.api.routers.vms import accepted
from corral.model.host import (
    HostBundle,
    HostBundleRequest,
    HostCreate,
    HostEnroll,
    HostInfo,
    MaintenanceRequest,
    RotateCertsRequest,
)
from corral.model.task import TaskInfo

router = APIRouter(tags=["hosts"])


@router.get("/hosts", name="host.list")
async def list_hosts(svc: Svc, _: Viewer) -> list[HostInfo]:
    return await svc.hosts.list_hosts()


@router.get("/hosts/{name}", name="host.show")
async def show_host(name: str, svc: Svc, _: Viewer) -> HostInfo:
    return await svc.hosts.info(name)


@router.post("/hosts", name="host.add", status_code=201)
async def add_host(body: HostCreate, svc: Svc, _: Admin) -> HostInfo:
    return await svc.hosts.add(body)


@router.post("/hosts/enroll", name="host.enroll", status_code=202)
async def enroll_host(
    body: HostEnroll, request: Request, response: Response, svc: Svc, who: Admin
) -> TaskInfo:
    """Enroll a host over SSH: a task (certificates, libvirtd/QEMU TLS, qemu+tls)."""
    request.state.audit_target = body.name
    return accepted(response, await svc.enrollment.enroll(who, body))


@router.post("/hosts/bundle", name="host.bundle")
async def host_bundle(body: HostBundleRequest, request: Request, svc: Svc, _: Admin) -> HostBundle:
    """Certificates, keys and configuration for a host with an ``install.sh`` to run there by
    hand; then add the host with the returned URI."""
    request.state.audit_target = body.name
    return await svc.enrollment.bundle(body)


@router.put("/hosts/{name}/maintenance", name="host.maintenance")
async def set_maintenance(name: str, body: MaintenanceRequest, svc: Svc, _: Admin) -> HostInfo:
    """In maintenance a host takes no new VMs (create and clone there are refused)."""
    return await svc.hosts.set_maintenance(name, body.enabled)


@router.post("/hosts/{name}/rotate-certs", name="host.rotate_certs", status_code=202)
async def rotate_certs(
    name: str,
    response: Response,
    svc: Svc,
    who: Admin,
    body: RotateCertsRequest | None = None,
) -> TaskInfo:
    task = await svc.cert_rotation.rotate(who, name, body or RotateCertsRequest())
    return accepted(response, task)


@router.delete("/hosts/{name}", name="host.remove", status_code=204)
async def remove_host(name: str, svc: Svc, _: Admin) -> Response:
    await svc.hosts.remove(name)
    return Response(status_code=204)
