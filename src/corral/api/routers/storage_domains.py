"""Storage domains: list and show (everyone), create, check and delete (admins); their
volumes (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from corral.api.deps import Admin, Svc, Viewer
from corral.api.openapi import on_host
from corral.api.params import CursorQuery, LimitQuery, NamePath, NameQuery, VolumePath
from corral.model.cursor import query_digest
from corral.model.page import DEFAULT_LIMIT, Page, paged
from corral.model.storage_domain import (
    DomainVolumeCreate,
    DomainVolumeResize,
    StorageDomainCreate,
    StorageDomainInfo,
)
from corral.model.volume import VolumeInfo

router = APIRouter(tags=["storage-domains"])


@router.get("/storage-domains", name="storage_domain.list")
async def list_domains(
    svc: Svc, _: Viewer, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[StorageDomainInfo]:
    """Every domain, the built-in ``local`` first then by name, each with every host's
    reach; a page at a time."""
    domains = await svc.storage.list_domains()
    return paged(
        domains,
        lambda d: (0 if d.builtin else 1, d.name),
        digest=query_digest("storage-domains"),
        limit=limit,
        cursor=cursor,
        arity=2,
    )


@router.get("/storage-domains/{name}", name="storage_domain.show")
async def show_domain(name: NamePath, svc: Svc, _: Viewer) -> StorageDomainInfo:
    return await svc.storage.show(name)


@router.post(
    "/storage-domains",
    name="storage_domain.create",
    status_code=201,
    responses=on_host(
        (409, "the name is taken, no host reaches the domain, or its kind is not available")
    ),
)
async def create_domain(
    body: StorageDomainCreate, request: Request, svc: Svc, who: Admin
) -> StorageDomainInfo:
    """Realise the domain on every connected host and check each one's reach; 409 (nothing
    recorded, nothing left on any host) when no host reaches it or its kind is not available."""
    request.state.audit_target = body.name
    return await svc.storage.create(who.user, body)


@router.post(
    "/storage-domains/{name}/check",
    name="storage_domain.check",
    responses=on_host(),
)
async def check_domain(name: NamePath, svc: Svc, _: Admin) -> StorageDomainInfo:
    """Check every connected host's reach again and record it."""
    return await svc.storage.check(name)


@router.delete(
    "/storage-domains/{name}",
    name="storage_domain.delete",
    status_code=204,
    responses=on_host((409, "the local domain, or a VM has a disk on the domain")),
)
async def delete_domain(name: NamePath, svc: Svc, _: Admin) -> Response:
    """Forget the domain on every host (its files stay); refused while a VM uses it."""
    await svc.storage.delete(name)
    return Response(status_code=204)


@router.get(
    "/storage-domains/{name}/volumes",
    name="storage_domain.volume.list",
    responses=on_host((409, "no connected host reaches the domain")),
)
async def list_volumes(
    name: NamePath,
    svc: Svc,
    _: Admin,
    host: NameQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[VolumeInfo]:
    """The domain's volumes with the VMs using them (local: every connected host's pool, or
    ``host``'s); by host and name, a page at a time."""
    volumes = await svc.storage_volumes.list_volumes(name, host)
    digest = query_digest("storage-domain-volumes", domain=name, host=host)
    return paged(
        volumes, lambda v: (v.host, v.name), digest=digest, limit=limit, cursor=cursor, arity=2
    )


@router.post(
    "/storage-domains/{name}/volumes",
    name="storage_domain.volume.create",
    status_code=201,
    responses=on_host(
        (409, "the name is taken, the volume is larger than the free space, or no host reaches it")
    ),
)
async def create_volume(
    name: NamePath, body: DomainVolumeCreate, request: Request, svc: Svc, _: Admin
) -> VolumeInfo:
    """A blank qcow2 volume (local: in ``host``'s pool, default the first host)."""
    request.state.audit_target = f"{name}/{body.name}"
    return await svc.storage_volumes.create(name, body)


@router.post(
    "/storage-domains/{name}/volumes/{volume}/resize",
    name="storage_domain.volume.resize",
    responses=on_host((409, "a VM uses the volume, or the size would shrink it")),
)
async def resize_volume(
    name: NamePath, volume: VolumePath, body: DomainVolumeResize, svc: Svc, _: Admin
) -> VolumeInfo:
    """Grow a volume no VM uses."""
    return await svc.storage_volumes.resize(name, volume, body)


@router.delete(
    "/storage-domains/{name}/volumes/{volume}",
    name="storage_domain.volume.delete",
    status_code=204,
    responses=on_host(
        (409, "a VM uses it, it is a library image or the base of another volume"),
    ),
)
async def delete_volume(
    name: NamePath, volume: VolumePath, svc: Svc, _: Admin, host: NameQuery = None
) -> Response:
    """Delete a volume nothing uses (local: in ``host``'s pool, default the first host)."""
    await svc.storage_volumes.delete(name, volume, host)
    return Response(status_code=204)
