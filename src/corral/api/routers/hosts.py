"""Hosts."""

from __future__ import annotations

from fastapi import APIRouter, Response

from corral.api.deps import Admin, Svc, Viewer
from corral.api.openapi import on_host, problem_responses
from corral.api.params import NamePath
from corral.model.host import HostCreate, HostInfo

router = APIRouter(tags=["hosts"])


@router.get("/hosts", name="host.list")
async def list_hosts(svc: Svc, _: Viewer) -> list[HostInfo]:
    return await svc.hosts.list_hosts()


@router.get("/hosts/{name}", name="host.show")
async def show_host(name: NamePath, svc: Svc, _: Viewer) -> HostInfo:
    return await svc.hosts.info(name)


@router.post(
    "/hosts",
    name="host.add",
    status_code=201,
    responses=on_host((409, "a host with this name (or this libvirt URI) is registered already")),
)
async def add_host(body: HostCreate, svc: Svc, _: Admin) -> HostInfo:
    return await svc.hosts.add(body)


@router.delete(
    "/hosts/{name}",
    name="host.remove",
    status_code=204,
    responses=problem_responses((409, "the host still has VMs")),
)
async def remove_host(name: NamePath, svc: Svc, _: Admin) -> Response:
    await svc.hosts.remove(name)
    return Response(status_code=204)
