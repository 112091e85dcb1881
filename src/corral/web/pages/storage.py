"""Storage domains: the list, a page per domain (each host's reach, the volumes) and the
administrators' actions (create per kind, check again, delete; volume create and delete).

Forms are turned into the API's own request models, so a page says what the API would
(``http/validation.py``); refusals from the services (a domain in use, no host reaching it)
come back as the same sentences.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter, ValidationError

from corral.errors import CorralError
from corral.http.validation import validation_items
from corral.model.auth import Role
from corral.model.storage_domain import (
    DomainVolumeCreate,
    DomainVolumeResize,
    ReachState,
    StorageDomainCreate,
    StorageDomainInfo,
    StorageDomainKind,
    VolumeOperation,
)
from corral.model.volume import VolumeInfo
from corral.services.principal import Principal
from corral.services.runtime import Services
from corral.web.form_numbers import gib_error
from corral.web.page_auth import PageAdmin, PageViewer
from corral.web.templating import render

router = APIRouter(include_in_schema=False)

_CREATE: TypeAdapter[Any] = TypeAdapter(StorageDomainCreate)
#: The fields each kind takes (the create form shows these; ``local`` is built in).
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    StorageDomainKind.SHARED_DIR.value: ("path",),
    StorageDomainKind.NFS.value: ("server", "export"),
    StorageDomainKind.ISCSI.value: ("portal", "target"),
}
FORM_FIELDS = ("name", "kind", "path", "server", "export", "portal", "target")


def reached(domain: StorageDomainInfo) -> int:
    return sum(1 for h in domain.hosts if h.state is ReachState.REACHABLE)


def _blank_form(kind: str = StorageDomainKind.SHARED_DIR.value) -> dict[str, str]:
    form = dict.fromkeys(FORM_FIELDS, "")
    form["kind"] = kind if kind in KIND_FIELDS else StorageDomainKind.SHARED_DIR.value
    return form


def _form_context(form: dict[str, str], errors: dict[str, str] | None = None) -> dict[str, Any]:
    return {"form": form, "kinds": list(KIND_FIELDS), "fields": KIND_FIELDS[form["kind"]],
            "errors": errors or {}}  # fmt: skip


@router.get("/storage-domains", name="ui.storage_domains")
async def domains_page(request: Request, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    context = {"active": "storage", "domains": await svc.storage.list_domains(),
               "reached": reached, **_form_context(_blank_form())}  # fmt: skip
    return render(request, "storage_domains.html", context)


@router.get("/ui/fragments/storage-domain-form", name="ui.fragment.storage_domain_form")
async def domain_form(request: Request, _: PageAdmin, kind: str = "") -> HTMLResponse:
    """The create form again for another kind (its fields differ), keeping the name."""
    form = _blank_form(kind)
    form["name"] = str(request.query_params.get("name", ""))[:63]
    return render(request, "fragments/storage_domain_form.html", _form_context(form))


def _create_body(form: dict[str, str]) -> dict[str, str]:
    body = {"kind": form["kind"], "name": form["name"].strip()}
    body.update({f: form[f].strip() for f in KIND_FIELDS.get(form["kind"], ())})
    return body


def _field_errors(exc: ValidationError) -> dict[str, str]:
    """The API's messages keyed by the form field they name (the union's tag left out)."""
    errors: dict[str, str] = {}
    for item in validation_items(exc.errors()):
        field = item["loc"].rsplit(".", 1)[-1]
        errors.setdefault(field if field in FORM_FIELDS else "form", item["msg"])
    return errors


@router.post("/ui/storage-domains", name="ui.storage_domain.create")
async def create_domain(request: Request, who: PageAdmin) -> HTMLResponse:
    svc: Services = request.app.state.services
    raw = await request.form()
    form = {k: v if isinstance(v := raw.get(k, ""), str) else "" for k in FORM_FIELDS}
    if form["kind"] not in KIND_FIELDS:
        form["kind"] = StorageDomainKind.SHARED_DIR.value
    request.state.audit_target = form["name"]
    try:
        body = _CREATE.validate_python(_create_body(form))
        created = await svc.storage.create(who.user, body)
    except ValidationError as exc:
        return _refused(request, form, _field_errors(exc))
    except CorralError as exc:
        return _refused(request, form, {"form": exc.message})
    response = HTMLResponse("", status_code=200)
    response.headers["HX-Redirect"] = f"/storage-domains/{created.name}"
    return response


def _refused(request: Request, form: dict[str, str], errors: dict[str, str]) -> HTMLResponse:
    # 422 lets htmx swap the form in with its messages; the audit entry records why.
    request.state.problem_detail = "; ".join(errors.values())
    context = _form_context(form, errors)
    return render(request, "fragments/storage_domain_form.html", context, status=422)


# -- one domain ------------------------------------------------------------------------------
async def _volumes(svc: Services, domain: StorageDomainInfo) -> tuple[list[VolumeInfo], str]:
    """The domain's volumes, or why they cannot be listed now (no host reaches it)."""
    try:
        return await svc.storage_volumes.list_volumes(domain.name), ""
    except CorralError as exc:
        return [], exc.message


def _supports(domain: StorageDomainInfo, operation: VolumeOperation) -> bool:
    return any(o.operation is operation and o.supported for o in domain.operations)


async def _context(svc: Services, name: str, admin: bool, **extra: Any) -> dict[str, Any]:
    domain = await svc.storage.show(name)
    volumes, note = await _volumes(svc, domain) if admin else ([], "")
    local_hosts = [h.host for h in domain.hosts if h.state is ReachState.REACHABLE]
    return {
        "domain": domain,
        "reached": reached(domain),
        "volumes": volumes,
        "volume_note": note,
        "volume_hosts": local_hosts if domain.builtin else [],
        "unsupported": [o for o in domain.operations if not o.supported],
        "can_create": _supports(domain, VolumeOperation.CREATE_VOLUME),
        "can_resize": _supports(domain, VolumeOperation.RESIZE_VOLUME),
        **extra,
    }


def _admin(who: Principal) -> bool:
    return who.allows(Role.ADMIN)


@router.get("/storage-domains/{name}", name="ui.storage_domain")
async def domain_page(request: Request, name: str, who: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    context = await _context(svc, name, _admin(who))
    return render(request, "storage_domain.html", {"active": "storage", **context})


@router.get("/ui/fragments/storage-domains/{name}", name="ui.fragment.storage_domain")
async def domain_fragment(request: Request, name: str, who: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "fragments/storage_domain.html", await _context(svc, name, _admin(who)))


@router.post("/ui/storage-domains/{name}/check", name="ui.storage_domain.check")
async def check_domain(request: Request, name: str, _: PageAdmin) -> HTMLResponse:
    svc: Services = request.app.state.services
    checked = await svc.storage.check(name)
    notice = f"checked: {reached(checked)} of {len(checked.hosts)} hosts reach {name}"
    context = await _context(svc, name, True, notice=notice)
    return render(request, "fragments/storage_domain.html", context)


@router.post("/ui/storage-domains/{name}/delete", name="ui.storage_domain.delete")
async def delete_domain(request: Request, name: str, _: PageAdmin) -> Response:
    """Refused (409, the service's sentence shown by the page) while a VM uses it."""
    svc: Services = request.app.state.services
    await svc.storage.delete(name)
    return Response(status_code=204, headers={"HX-Redirect": "/storage-domains"})


@router.post("/ui/storage-domains/{name}/volumes", name="ui.storage_domain.volume.create")
async def create_volume(
    request: Request,
    name: str,
    _: PageAdmin,
    volume: Annotated[str, Form(max_length=63)],
    size_gib: Annotated[str, Form(max_length=20)] = "1",
    host: Annotated[str, Form(max_length=63)] = "",
) -> HTMLResponse:
    svc: Services = request.app.state.services
    request.state.audit_target = f"{name}/{volume}"
    if (why := gib_error(size_gib)) is not None:
        return await _volume_refused(request, svc, name, f"size_gib: {why}")
    try:
        body = DomainVolumeCreate.model_validate(
            {"name": volume.strip(), "size_gib": size_gib.strip() or None, "host": host or None}
        )
    except ValidationError as exc:
        return await _volume_refused(request, svc, name, _sentence(exc))
    made = await svc.storage_volumes.create(name, body)
    notice = f"created volume {made.name} ({made.capacity_bytes} bytes)"
    return render(request, "fragments/storage_domain.html", await _context(svc, name, True,
                  notice=notice))  # fmt: skip


@router.post(
    "/ui/storage-domains/{name}/volumes/{volume}/resize",
    name="ui.storage_domain.volume.resize",
)
async def resize_volume(
    request: Request,
    name: str,
    volume: str,
    _: PageAdmin,
    size_gib: Annotated[str, Form(max_length=20)],
    host: Annotated[str, Form(max_length=63)] = "",
) -> HTMLResponse:
    """Grow a volume no VM uses (a shrink or a volume in use: the service's sentence)."""
    svc: Services = request.app.state.services
    if (why := gib_error(size_gib)) is not None:
        return await _volume_refused(request, svc, name, f"size_gib: {why}")
    try:
        body = DomainVolumeResize.model_validate(
            {"size_gib": size_gib.strip() or None, "host": host or None}
        )
    except ValidationError as exc:
        return await _volume_refused(request, svc, name, _sentence(exc))
    grown = await svc.storage_volumes.resize(name, volume, body)
    notice = f"volume {volume} now has {grown.capacity_bytes} bytes"
    context = await _context(svc, name, True, notice=notice)
    return render(request, "fragments/storage_domain.html", context)


def _sentence(exc: ValidationError) -> str:
    return "; ".join(f"{i['loc']}: {i['msg']}" for i in validation_items(exc.errors()))


async def _volume_refused(request: Request, svc: Services, name: str, message: str) -> HTMLResponse:
    request.state.problem_detail = message
    context = await _context(svc, name, True, volume_error=message)
    return render(request, "fragments/storage_domain.html", context, status=422)


@router.post(
    "/ui/storage-domains/{name}/volumes/{volume}/delete",
    name="ui.storage_domain.volume.delete",
)
async def delete_volume(
    request: Request,
    name: str,
    volume: str,
    _: PageAdmin,
    host: Annotated[str, Form(max_length=63)] = "",
) -> HTMLResponse:
    svc: Services = request.app.state.services
    await svc.storage_volumes.delete(name, volume, host or None)
    context = await _context(svc, name, True, notice=f"deleted volume {volume}")
    return render(request, "fragments/storage_domain.html", context)
