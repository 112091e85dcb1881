"""The templates page: every template with the VMs standing on it, a form that makes a
template of a shut-off VM, and one that makes a VM from a template (linked or full) with
cloud-init's hostname, user, SSH key and user-data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from corral.errors import CorralError
from corral.model.template import TemplateCreate, TemplateVmRequest
from corral.services.runtime import Services
from corral.web.page_auth import PageOperator, PageViewer
from corral.web.templating import render

router = APIRouter(include_in_schema=False)

FORM_FIELDS = ("template", "name", "clone", "hostname", "user", "ssh_key", "user_data")
MAKE_FIELDS = ("name", "from_vm", "description")


async def _context(
    svc: Services, form: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    templates = await svc.templates.all()
    shown = []
    for t in templates:
        try:
            shown.append(await svc.templates.show(t.name))
        except CorralError:
            shown.append(t)  # its host is down: no "used by" then
    empty = dict.fromkeys(FORM_FIELDS, "") | {"clone": "linked"}
    return {"active": "templates", "templates": shown, "form": form or empty, "errors": {},
            "make": dict.fromkeys(MAKE_FIELDS, ""), "make_errors": {}, **extra}  # fmt: skip


@router.get("/templates", name="ui.templates")
async def templates_page(request: Request, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "templates.html", await _context(svc))


def _body(form: dict[str, Any]) -> dict[str, Any]:
    keys = [line.strip() for line in form["ssh_key"].splitlines() if line.strip()]
    cloud: dict[str, Any] = {}
    if form["hostname"]:
        cloud["hostname"] = form["hostname"]
    if form["user"]:
        cloud["users"] = [{"name": form["user"], "ssh_authorized_keys": keys, "sudo": True}]
    elif keys:
        cloud["ssh_authorized_keys"] = keys
    if form["user_data"].strip():
        cloud["user_data"] = form["user_data"].replace("\r\n", "\n")
    body: dict[str, Any] = {"name": form["name"], "clone": form["clone"], "start": form["start"]}
    if cloud:
        body["cloud_init"] = cloud
    return body


@router.post("/ui/templates", name="ui.template.create", response_model=None)
async def create_template(request: Request, who: PageOperator) -> HTMLResponse | Response:
    """A template of a shut-off VM; on success the page loads again with it listed."""
    svc: Services = request.app.state.services
    raw = await request.form()
    make = {k: v.strip() if isinstance(v := raw.get(k, ""), str) else "" for k in MAKE_FIELDS}
    request.state.audit_target = make["name"]
    try:
        body = TemplateCreate.model_validate(make)
        await svc.templates.create(who, body)
    except ValidationError as exc:
        message = "; ".join(
            f"{e['loc'][0] if e['loc'] else 'form'}: {e['msg']}" for e in exc.errors()
        )
        return await _make_refused(request, svc, make, message)
    except CorralError as exc:
        return await _make_refused(request, svc, make, exc.message)
    return Response(status_code=204, headers={"HX-Redirect": "/templates"})


async def _make_refused(
    request: Request, svc: Services, make: dict[str, str], message: str
) -> HTMLResponse:
    request.state.problem_detail = message
    context = await _context(svc)
    context["make"], context["make_errors"] = make, {"form": message}
    return render(request, "fragments/template_make_form.html", context, status=422)


@router.post("/ui/templates/vms", name="ui.template.vm.create")
async def create_vm(request: Request, who: PageOperator) -> HTMLResponse:
    svc: Services = request.app.state.services
    raw = await request.form()
    form: dict[str, Any] = {
        k: v if isinstance(v := raw.get(k, ""), str) else "" for k in FORM_FIELDS
    }
    form["start"] = raw.get("start") == "1"
    request.state.audit_target = form["name"]
    try:
        body = TemplateVmRequest.model_validate(_body(form))
        task = await svc.templates.new_vm(who, form["template"], body)
    except ValidationError as exc:
        errors = {".".join(str(p) for p in e["loc"][:1]) or "form": e["msg"] for e in exc.errors()}
        return await _refused(request, svc, form, {"form": "; ".join(errors.values())})
    except CorralError as exc:
        return await _refused(request, svc, form, {"form": exc.message})
    notice = f"making VM {body.name} from template {form['template']}"
    context = await _context(svc, notice=notice, task_id=task.id, made=body.name)
    return render(request, "fragments/template_form.html", context)


async def _refused(
    request: Request, svc: Services, form: dict[str, Any], errors: dict[str, str]
) -> HTMLResponse:
    # 422 lets htmx swap the form in with its message; the audit entry records why.
    request.state.problem_detail = "; ".join(errors.values())
    context = await _context(svc, form)
    context["errors"] = errors
    return render(request, "fragments/template_form.html", context, status=422)
