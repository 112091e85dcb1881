"""The image library page: every host's images and each shared storage domain's, upload (by
script, straight to the API) and delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from corral.errors import CorralError
from corral.services.runtime import Services
from corral.web.page_auth import PageOperator, PageViewer
from corral.web.templating import render

router = APIRouter(include_in_schema=False)


async def _context(svc: Services, **extra: Any) -> dict[str, Any]:
    note = ""
    try:
        images = await svc.images.list_images()
    except CorralError as exc:
        images, note = [], exc.message
    hosts = [h.name for h in svc.hosts.all()]
    domains = await _upload_domains(svc)
    return {"active": "images", "images": images, "hosts": hosts, "domains": domains,
            "note": note, **extra}  # fmt: skip


async def _upload_domains(svc: Services) -> list[str]:
    """The domains an upload may go to: local first, then those whose kind keeps images."""
    try:
        domains = await svc.storage.list_domains()
    except CorralError:
        return ["local"]
    takes = [
        d.name
        for d in domains
        if any(o.operation == "upload" and o.supported for o in d.operations)
    ]
    return sorted(takes, key=lambda name: (name != "local", name))


@router.get("/images", name="ui.images")
async def images_page(request: Request, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "images.html", await _context(svc))


@router.get("/ui/fragments/images", name="ui.fragment.images")
async def images_fragment(request: Request, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "fragments/image_list.html", await _context(svc))


@router.post("/ui/images/{name}/delete", name="ui.image.delete")
async def delete_image(
    request: Request,
    name: str,
    who: PageOperator,
    host: Annotated[str, Form(max_length=63)] = "",
    domain: Annotated[str, Form(max_length=63)] = "",
) -> HTMLResponse:
    svc: Services = request.app.state.services
    where = host or (domain if domain != "local" else "")
    request.state.audit_target = f"{where}/{name}" if where else name
    await svc.images.delete(who, name, host or None, domain or None)
    context = await _context(svc, notice=f"deleted image {name}")
    return render(request, "fragments/image_list.html", context)
