"""Hosts: list, show, add by URI, enroll (over SSH or as a bundle), maintenance, certificate
rotation, remove."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from corral.api.deps import Admin, Svc, Viewer
from corral.api.openapi import on_host, problem_responses
from corral.api.params import CursorQuery, LimitQuery, NamePath, NamePrefixQuery
from corral.api.routers.vms import ACCEPTED, accepted
from corral.model.cursor import query_digest
from corral.model.host import (
    HostAgentInfo,
    HostBundle,
    HostBundleRequest,
    HostCreate,
    HostEnroll,
    HostInfo,
    MaintenanceRequest,
    RotateCertsRequest,
)
from corral.model.page import DEFAULT_LIMIT, Page, paged
from corral.model.task import TaskInfo

router = APIRouter(tags=["hosts"])


@router.get("/hosts", name="host.list")
async def list_hosts(
    svc: Svc,
    _: Viewer,
    name_prefix: NamePrefixQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[HostInfo]:
    """Hosts by name, a page at a time."""
    hosts = [h for h in await svc.hosts.list_hosts() if h.name.startswith(name_prefix or "")]
    digest = query_digest("hosts", name_prefix=name_prefix)
    return paged(hosts, lambda h: (h.name,), digest=digest, limit=limit, cursor=cursor)


@router.get("/hosts/{name}", name="host.show")
async def show_host(name: NamePath, svc: Svc, _: Viewer) -> HostInfo:
    """The host, with what it can run per guest architecture (machine types, max vCPUs, CPU
    models, nesting) in ``capabilities.guests``."""
    return await svc.hosts.info(name, guests=True)


@router.post(
    "/hosts",
    name="host.add",
    status_code=201,
    responses=on_host((409, "a host with this name (or this libvirt URI) is registered already")),
)
async def add_host(body: HostCreate, svc: Svc, _: Admin) -> HostInfo:
    return await svc.hosts.add(body)


@router.post(
    "/host-enrollments",
    name="host.enroll",
    status_code=202,
    response_model=TaskInfo,
    responses={
        **ACCEPTED,
        **problem_responses(
            (404, "the SSH key file is not on the Corral server"),
            (409, "a host with this name exists already"),
        ),
    },
)
async def enroll_host(body: HostEnroll, request: Request, svc: Svc, who: Admin) -> Response:
    """Enroll a host over SSH: a task (certificates, libvirtd/QEMU TLS, qemu+tls)."""
    request.state.audit_target = body.name
    return accepted(await svc.enrollment.enroll(who, body))


@router.post(
    "/host-bundles",
    name="host.bundle",
    responses=problem_responses((409, "a host with this name exists already")),
)
async def host_bundle(body: HostBundleRequest, request: Request, svc: Svc, _: Admin) -> HostBundle:
    """Certificates, keys and configuration for a host with an ``install.sh`` to run there by
    hand; then add the host with the returned URI."""
    request.state.audit_target = body.name
    return await svc.enrollment.bundle(body)


@router.put("/hosts/{name}/maintenance", name="host.maintenance")
async def set_maintenance(name: NamePath, body: MaintenanceRequest, svc: Svc, _: Admin) -> HostInfo:
    """In maintenance a host takes no new VMs (create and clone there are refused)."""
    return await svc.hosts.set_maintenance(name, body.enabled)


@router.post(
    "/hosts/{name}/agent",
    name="host.agent",
    responses=on_host(
        (409, "the host has no SSH access recorded (not enrolled over SSH)"),
        (504, "the agent did not answer in time"),
    ),
)
async def check_agent(name: NamePath, svc: Svc, _: Admin) -> HostAgentInfo:
    """Ask the host agent who it is, installing it first over the host's recorded SSH access
    when it is missing or of another version."""
    answer = await svc.agents.ensure(name)
    return HostAgentInfo(
        host=name, **{k: answer[k] for k in ("version", "protocol", "python", "ops")}
    )


@router.post(
    "/hosts/{name}/rotate-certs",
    name="host.rotate_certs",
    status_code=202,
    response_model=TaskInfo,
    responses={**ACCEPTED, **on_host((409, "the host was not enrolled by Corral, or is busy"))},
)
async def rotate_certs(
    name: NamePath, svc: Svc, who: Admin, body: RotateCertsRequest | None = None
) -> Response:
    task = await svc.cert_rotation.rotate(who, name, body or RotateCertsRequest())
    return accepted(task)


@router.delete(
    "/hosts/{name}",
    name="host.remove",
    status_code=204,
    responses=problem_responses((409, "the host still has VMs")),
)
async def remove_host(name: NamePath, svc: Svc, _: Admin) -> Response:
    await svc.hosts.remove(name)
    return Response(status_code=204)
