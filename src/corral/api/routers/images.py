"""The image library: list, show, upload (the request body streamed into a volume), delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.requests import ClientDisconnect

from corral.api.deps import Operator, Svc, Viewer
from corral.api.openapi import on_host
from corral.api.params import CursorQuery, LimitQuery, NamePath
from corral.api.problems import problem
from corral.errors import InvalidRequest
from corral.model.common import Name
from corral.model.cursor import query_digest
from corral.model.image import ImageInfo, ImageKind, ImageUploaded
from corral.model.page import DEFAULT_LIMIT, Page, paged

router = APIRouter(tags=["images"])

HostQuery = Annotated[
    Name | None,
    Query(
        description="the host whose library is meant: its own pool and the shared storage "
        "domains it reaches (default: where it is)"
    ),
]
DomainQuery = Annotated[
    Name | None,
    Query(description="the storage domain whose images are meant (local: the hosts' own pools)"),
]

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the image's bytes, as they are (no multipart); `Content-Length` is "
        "required",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.get(
    "/images",
    name="image.list",
    responses=on_host((404, "no such host or domain"), (409, "the host is not connected")),
)
async def list_images(
    svc: Svc,
    _: Viewer,
    host: HostQuery = None,
    domain: DomainQuery = None,
    kind: ImageKind | None = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[ImageInfo]:
    """The images of every connected host's own pool and of each shared storage domain
    (listed once, with its domain and no host), or of one host or one domain; by name, a page
    at a time."""
    images = [
        i for i in await svc.images.list_images(host, domain) if kind is None or i.kind == kind
    ]
    digest = query_digest("images", host=host, domain=domain, kind=kind)
    return paged(
        images,
        lambda i: (i.name, i.domain, i.host or ""),
        digest=digest,
        limit=limit,
        cursor=cursor,
        arity=3,
    )


@router.get(
    "/images/{name}",
    name="image.show",
    responses=on_host(
        (404, "no such image, host or domain"), (409, "several places have it: name one")
    ),
)
async def show_image(
    name: NamePath, svc: Svc, _: Viewer, host: HostQuery = None, domain: DomainQuery = None
) -> ImageInfo:
    return await svc.images.get(name, host, domain)


async def _body(request: Request, total: int) -> AsyncIterator[bytes]:
    received = 0
    try:
        async for chunk in request.stream():
            if chunk:
                received += len(chunk)
                yield chunk
    except ClientDisconnect:
        raise InvalidRequest(
            f"the client went away after {received} of {total} bytes: nothing was kept"
        ) from None


def _content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length", "")
    return int(raw) if raw.isascii() and raw.isdigit() else None  # not "²": int() refuses it


@router.put(
    "/images/{name}",
    name="image.upload",
    status_code=201,
    response_model=ImageUploaded,
    openapi_extra=_UPLOAD_BODY,
    responses=on_host(
        (404, "no such host or domain"),
        (
            409,
            "the name is taken, the place lacks the room, the domain keeps no images (iscsi) "
            "or none of that kind (kernel images on nfs), the host does not reach the domain, "
            "or the upload was cancelled",
        ),
        (411, "no Content-Length"),
        (422, "not an image of the kind asked (e.g. not an ISO)"),
        (504, "no data for 60 s"),
    ),
)
async def upload_image(
    name: Name,
    request: Request,
    response: Response,
    svc: Svc,
    who: Operator,
    host: Annotated[
        Name | None,
        Query(
            description="target host (local domain; default: the first), or the host the "
            "upload goes through (another domain; default: any host reaching it)"
        ),
    ] = None,
    domain: Annotated[
        Name | None, Query(description="target storage domain (default: local)")
    ] = None,
    kind: Annotated[
        ImageKind | None, Query(description="iso or disk (default: what the bytes are)")
    ] = None,
) -> ImageUploaded | Response:
    """Upload an image: the request body is streamed into a new volume of the host's pool (or of
    storage domain ``domain``: shared-dir through its libvirt pool, nfs through the host
    agent, nothing staged on the host's disk), as a task (``image.upload``, target
    ``HOST/NAME`` or ``DOMAIN/NAME``) whose progress others can follow and cancel.
    Answers once the image is complete. Checked before any volume exists: the name is free,
    the pool has room for ``Content-Length`` bytes, and the first 32 KiB are the kind asked
    (ISO 9660/UDF for ``iso``; for ``disk`` qcow2 without backing file, or raw). Any failure
    (client gone, cancel, host error) deletes the partial volume. Never overwrites."""
    request.state.audit_target = f"{domain or host}/{name}" if domain or host else name
    total = _content_length(request)
    if total is None:
        detail = "send the image with a Content-Length header (chunked uploads are refused)"
        request.state.problem_detail = detail
        return problem(411, "Length required", detail)
    uploaded = await svc.images.upload(
        who, name, host_name=host, kind=kind, total=total, chunks=_body(request, total),
        domain=domain,
    )  # fmt: skip
    image = uploaded.image
    where = f"host={image.host}" if image.host else f"domain={image.domain}"
    response.headers["Location"] = f"/api/v1/images/{image.name}?{where}"
    return uploaded


@router.delete(
    "/images/{name}",
    name="image.delete",
    status_code=204,
    responses=on_host(
        (404, "no such image, host or domain"), (409, "a VM uses it, or it is uploading")
    ),
)
async def delete_image(
    name: NamePath,
    request: Request,
    svc: Svc,
    who: Operator,
    host: HostQuery = None,
    domain: DomainQuery = None,
) -> Response:
    """Delete an image; refused (409) while a VM uses it or an upload runs."""
    request.state.audit_target = f"{domain or host}/{name}" if domain or host else name
    await svc.images.delete(who, name, host, domain)
    return Response(status_code=204)
