"""The image library: list, show, upload (the request body streamed into a volume), delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.requests import ClientDisconnect

from corral.api.deps import Operator, Svc, Viewer
from corral.api.openapi import on_host
from corral.api.params import NamePath
from corral.api.problems import problem
from corral.errors import InvalidRequest
from corral.model.common import Name
from corral.model.image import ImageInfo, ImageKind, ImageUploaded

router = APIRouter(tags=["images"])

HostQuery = Annotated[
    Name | None, Query(description="the host whose library is meant (default: where it is)")
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
    responses=on_host((404, "no such host"), (409, "the host is not connected")),
)
async def list_images(svc: Svc, _: Viewer, host: HostQuery = None) -> list[ImageInfo]:
    """The images of every connected host (or of one)."""
    return await svc.images.list_images(host)


@router.get(
    "/images/{name}",
    name="image.show",
    responses=on_host((404, "no such image or host"), (409, "several hosts have it: name one")),
)
async def show_image(name: NamePath, svc: Svc, _: Viewer, host: HostQuery = None) -> ImageInfo:
    return await svc.images.get(name, host)


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
        (404, "no such host"),
        (409, "the name is taken, the pool lacks the room, or the upload was cancelled"),
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
    host: Annotated[Name | None, Query(description="target host (default: the first)")] = None,
    kind: Annotated[
        ImageKind | None, Query(description="iso or disk (default: what the bytes are)")
    ] = None,
) -> ImageUploaded | Response:
    """Upload an image: the request body is streamed into a new volume of the host's pool, as a
    task (``image.upload``, target ``HOST/NAME``) whose progress others can follow and cancel.
    Answers once the image is complete. Checked before any volume exists: the name is free,
    the pool has room for ``Content-Length`` bytes, and the first 32 KiB are the kind asked
    (ISO 9660/UDF for ``iso``; for ``disk`` qcow2 without backing file, or raw). Any failure
    (client gone, cancel, host error) deletes the partial volume. Never overwrites."""
    request.state.audit_target = f"{host}/{name}" if host else name
    total = _content_length(request)
    if total is None:
        detail = "send the image with a Content-Length header (chunked uploads are refused)"
        request.state.problem_detail = detail
        return problem(411, "Length required", detail)
    uploaded = await svc.images.upload(
        who, name, host_name=host, kind=kind, total=total, chunks=_body(request, total)
    )
    image = uploaded.image
    response.headers["Location"] = f"/api/v1/images/{image.name}?host={image.host}"
    return uploaded


@router.delete(
    "/images/{name}",
    name="image.delete",
    status_code=204,
    responses=on_host((404, "no such image or host"), (409, "a VM uses it, or it is uploading")),
)
async def delete_image(
    name: NamePath, request: Request, svc: Svc, who: Operator, host: HostQuery = None
) -> Response:
    """Delete an image; refused (409) while a VM uses it or an upload runs."""
    request.state.audit_target = f"{host}/{name}" if host else name
    await svc.images.delete(who, name, host)
    return Response(status_code=204)
