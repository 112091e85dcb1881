"""Cluster networks (admins change them; everyone may read them) and host NIC labels."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from corral.api.deps import Admin, Svc, Viewer
from corral.api.openapi import on_host, problem_responses
from corral.api.params import CursorQuery, LimitQuery, NamePath
from corral.api.routers.vms import ACCEPTED, accepted
from corral.model.cursor import query_digest
from corral.model.network import (
    LABEL_PATTERN,
    NIC_PATTERN,
    HostNic,
    NetworkCreate,
    NetworkEdit,
    NetworkInfo,
    NicLabelInfo,
)
from corral.model.page import DEFAULT_LIMIT, Page, paged
from corral.model.task import TaskInfo

router = APIRouter()

NicPath = Annotated[str, Path(pattern=NIC_PATTERN, description="a NIC name on the host")]
LabelPath = Annotated[str, Path(pattern=LABEL_PATTERN, description="a NIC label (`lan`)")]


@router.get("/networks", name="network.list", tags=["networks"])
async def list_networks(
    svc: Svc, _: Viewer, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[NetworkInfo]:
    """Every cluster network with its state on each host, by name, a page at a time."""
    networks = await svc.networks.list_networks()
    digest = query_digest("networks")
    return paged(networks, lambda n: (n.name,), digest=digest, limit=limit, cursor=cursor)


@router.post(
    "/networks",
    name="network.create",
    status_code=202,
    tags=["networks"],
    response_model=TaskInfo,
    responses={
        **ACCEPTED,
        **problem_responses(
            (409, "the name or the VNI is taken, or no host has a NIC with the uplink label")
        ),
    },
)
async def create_network(body: NetworkCreate, request: Request, svc: Svc, who: Admin) -> Response:
    """Declare a network and realise it on every connected host, as a task (progress per
    host). 409 when no host has a NIC carrying a bridge network's ``uplink`` label."""
    request.state.audit_target = body.name
    return accepted(await svc.networks.create(who, body))


@router.post(
    "/network-checks",
    name="network.check",
    tags=["networks"],
    responses=on_host(),
)
async def check_networks(request: Request, svc: Svc, _: Admin) -> list[NetworkInfo]:
    """Compare every connected host with the networks as applied; what no longer matches
    is marked ``drifted`` (the next apply puts it right)."""
    request.state.audit_target = "cluster"
    return await svc.networks.check()


@router.get(
    "/networks/{name}",
    name="network.show",
    tags=["networks"],
    responses=problem_responses((404, "no such network")),
)
async def show_network(name: NamePath, svc: Svc, _: Viewer) -> NetworkInfo:
    """One network with its state on each host."""
    return await svc.networks.get(name)


@router.patch(
    "/networks/{name}",
    name="network.edit",
    status_code=202,
    tags=["networks"],
    response_model=TaskInfo,
    responses={
        **ACCEPTED,
        **problem_responses(
            (404, "no such network"),
            (409, "an uplink for a network of another kind, or a label no host has"),
        ),
    },
)
async def edit_network(name: NamePath, body: NetworkEdit, svc: Svc, who: Admin) -> Response:
    """Change a network (``required``, ``description``, a bridge's ``uplink``) and apply it
    to every connected host, as a task."""
    return accepted(await svc.networks.edit(who, name, body))


@router.post(
    "/networks/{name}/apply",
    name="network.apply",
    status_code=202,
    tags=["networks"],
    response_model=TaskInfo,
    responses={**ACCEPTED, **problem_responses((404, "no such network"))},
)
async def apply_network(name: NamePath, svc: Svc, who: Admin) -> Response:
    """Apply a network to every connected host again, as a task: puts right what drifted,
    or retries where it failed once the cause is fixed."""
    return accepted(await svc.networks.apply(who, name))


@router.delete(
    "/networks/{name}",
    name="network.delete",
    status_code=202,
    tags=["networks"],
    response_model=TaskInfo,
    responses={
        **ACCEPTED,
        **problem_responses((404, "no such network"), (409, "a VM's NIC uses it")),
    },
)
async def delete_network(name: NamePath, svc: Svc, who: Admin) -> Response:
    """Delete a network no VM's NIC uses (409 names the VMs) and remove it from every
    connected host, as a task; hosts not connected lose it when they reconnect."""
    return accepted(await svc.networks.delete(who, name))


@router.get(
    "/hosts/{name}/nics",
    name="host.nics",
    tags=["hosts"],
    responses=on_host((404, "no such host"), (409, "the host is not connected")),
)
async def list_nics(
    name: NamePath,
    svc: Svc,
    _: Viewer,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[HostNic]:
    """The host's NICs (libvirt's interface list) with their labels, by name."""
    nics = await svc.nics.list_nics(name)
    digest = query_digest("host-nics", host=name)
    return paged(nics, lambda n: (n.name,), digest=digest, limit=limit, cursor=cursor)


@router.put(
    "/hosts/{name}/nics/{nic}/labels/{label}",
    name="host.nic.label",
    tags=["hosts"],
    responses=on_host((404, "no such host or NIC"), (409, "the host is not connected")),
)
async def label_nic(
    name: NamePath, nic: NicPath, label: LabelPath, svc: Svc, _: Admin
) -> NicLabelInfo:
    """Put a label on a NIC (a label names one NIC per host: set again, it moves). Bridge
    networks on that label are applied to the host again."""
    return await svc.nics.label(name, nic, label)


@router.delete(
    "/hosts/{name}/nics/{nic}/labels/{label}",
    name="host.nic.unlabel",
    status_code=204,
    tags=["hosts"],
    responses=problem_responses((404, "no such host, or the NIC has no such label")),
)
async def unlabel_nic(
    name: NamePath, nic: NicPath, label: LabelPath, svc: Svc, _: Admin
) -> Response:
    """Take a label off a NIC."""
    await svc.nics.unlabel(name, nic, label)
    return Response(status_code=204)
