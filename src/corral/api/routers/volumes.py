"""The volumes of Corral's pool on each host (admins): list, delete what nothing uses."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from corral.api.deps import Admin, Svc
from corral.api.openapi import on_host
from corral.api.params import CursorQuery, LimitQuery, NamePath, NameQuery, VolumePath
from corral.model.cursor import query_digest
from corral.model.page import DEFAULT_LIMIT, Page, paged
from corral.model.volume import VolumeInfo

router = APIRouter(tags=["volumes"])


@router.get(
    "/volumes",
    name="volume.list",
    responses=on_host((404, "no such host"), (409, "the host is not connected")),
)
async def list_volumes(
    svc: Svc,
    _: Admin,
    host: NameQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[VolumeInfo]:
    """The volumes of Corral's pool on every connected host (or on one), each with the VMs that
    use it; serial logs are not listed. By host and name, a page at a time."""
    volumes = await svc.volumes.list_volumes(host)
    digest = query_digest("volumes", host=host)
    return paged(
        volumes, lambda v: (v.host, v.name), digest=digest, limit=limit, cursor=cursor, arity=2
    )


@router.delete(
    "/hosts/{host}/volumes/{name}",
    name="volume.delete",
    status_code=204,
    responses=on_host(
        (404, "no such host or volume"),
        (409, "a VM uses it, it is a library image or the base of another volume"),
    ),
)
async def delete_volume(
    host: NamePath, name: VolumePath, request: Request, svc: Svc, _: Admin
) -> Response:
    """Delete a volume that no domain defined on the host uses (directly or through a linked
    clone), that is no library image and no other volume's base; refused with 409 naming what
    holds it."""
    request.state.audit_target = f"{host}/{name}"
    await svc.volumes.delete(host, name)
    return Response(status_code=204)
