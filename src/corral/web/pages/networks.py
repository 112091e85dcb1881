"""Cluster networks: the list, a page per network (its state on each host, its tasks) and the
administrators' actions (create per kind, edit, check the hosts, delete).

Creating, editing and deleting apply the change to every host as a task: the pages show its
progress in their task lists, refreshed live. Forms become the API's own request models, so
the messages are the API's (``http/validation.py``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter, ValidationError

from corral.errors import CorralError, InvalidRequest
from corral.http.validation import validation_items
from corral.model.network import NetworkCreate, NetworkEdit, NetworkInfo, NetworkKind
from corral.model.task import TaskInfo
from corral.services.runtime import Services
from corral.web.form_numbers import whole_error
from corral.web.page_auth import PageAdmin, PageViewer
from corral.web.pages.host_nics import nic_context
from corral.web.templating import render

router = APIRouter(include_in_schema=False)

_CREATE: TypeAdapter[Any] = TypeAdapter(NetworkCreate)
#: The fields each kind takes beyond name, required and description.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    NetworkKind.NAT.value: (),
    NetworkKind.ISOLATED.value: (),
    NetworkKind.BRIDGE.value: ("uplink", "vlan"),
    NetworkKind.VXLAN.value: ("vni",),
}
FORM_FIELDS = ("name", "kind", "description", "uplink", "vlan", "vni")
_NUMBERS = ("vlan", "vni")
TASK_KINDS = ("network.create", "network.edit", "network.apply", "network.delete")


def state_counts(network: NetworkInfo) -> dict[str, int]:
    """How many hosts are in each state (``applied: 2``), for the list."""
    counts: dict[str, int] = {}
    for h in network.hosts:
        counts[h.state.value] = counts.get(h.state.value, 0) + 1
    return counts


def _blank_form(kind: str = NetworkKind.NAT.value) -> dict[str, Any]:
    form: dict[str, Any] = dict.fromkeys(FORM_FIELDS, "")
    form["kind"] = kind if kind in KIND_FIELDS else NetworkKind.NAT.value
    form["required"] = False
    return form


def _form_context(form: dict[str, Any], errors: dict[str, str] | None = None) -> dict[str, Any]:
    return {"form": form, "kinds": list(KIND_FIELDS), "fields": KIND_FIELDS[form["kind"]],
            "errors": errors or {}}  # fmt: skip


async def _tasks(svc: Services, name: str | None = None) -> list[TaskInfo]:
    """The latest network tasks (of network ``name`` only, if given)."""
    found = [
        t
        for t in await svc.tasks.list_tasks(limit=200)
        if t.kind in TASK_KINDS and (name is None or t.target == name)
    ]
    return found[:10]


async def _list_context(svc: Services, **extra: Any) -> dict[str, Any]:
    return {"networks": await svc.networks.list_networks(), "tasks": await _tasks(svc),
            "state_counts": state_counts, **extra}  # fmt: skip


@router.get("/networks", name="ui.networks")
async def networks_page(request: Request, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    context = {
        "active": "networks",
        **await _list_context(svc),
        **_form_context(_blank_form()),
        **await nic_context(svc),
    }
    return render(request, "networks.html", context)


@router.get("/ui/fragments/networks", name="ui.fragment.networks")
async def networks_fragment(request: Request, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "fragments/network_list.html", await _list_context(svc))


@router.get("/ui/fragments/network-form", name="ui.fragment.network_form")
async def network_form(request: Request, _: PageAdmin, kind: str = "") -> HTMLResponse:
    """The create form again for another kind (its fields differ), keeping what was typed."""
    form = _blank_form(kind)
    for key in ("name", "description"):
        form[key] = str(request.query_params.get(key, ""))[:1024]
    form["required"] = request.query_params.get("required") == "1"
    return render(request, "fragments/network_form.html", _form_context(form))


def _create_body(form: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": form["kind"],
        "name": form["name"].strip(),
        "required": form["required"],
        "description": form["description"],
    }
    for field in KIND_FIELDS[form["kind"]]:
        value = form[field].strip()
        if value:
            body[field] = int(value) if field in _NUMBERS else value
    return body


def _field_errors(exc: ValidationError) -> dict[str, str]:
    """The API's messages keyed by the form field they name (the union's tag left out)."""
    errors: dict[str, str] = {}
    for item in validation_items(exc.errors()):
        field = item["loc"].rsplit(".", 1)[-1]
        errors.setdefault(field if field in FORM_FIELDS else "form", item["msg"])
    return errors


async def _read_form(request: Request) -> dict[str, Any]:
    raw = await request.form()
    form: dict[str, Any] = {
        k: v if isinstance(v := raw.get(k, ""), str) else "" for k in FORM_FIELDS
    }
    if form["kind"] not in KIND_FIELDS:
        form["kind"] = NetworkKind.NAT.value
    form["required"] = raw.get("required") == "1"
    return form


@router.post("/ui/networks", name="ui.network.create")
async def create_network(request: Request, who: PageAdmin) -> HTMLResponse:
    svc: Services = request.app.state.services
    form = await _read_form(request)
    request.state.audit_target = form["name"]
    numbers = {f: why for f in KIND_FIELDS[form["kind"]] if f in _NUMBERS
               and (why := whole_error(form[f])) is not None}  # fmt: skip
    try:
        if numbers:
            return _refused(request, form, numbers)
        body = _CREATE.validate_python(_create_body(form))
        await svc.networks.create(who, body)
    except ValidationError as exc:
        return _refused(request, form, _field_errors(exc))
    except CorralError as exc:
        return _refused(request, form, {"form": exc.message})
    response = HTMLResponse("", status_code=200)
    response.headers["HX-Redirect"] = f"/networks/{body.name}"
    return response


def _refused(request: Request, form: dict[str, Any], errors: dict[str, str]) -> HTMLResponse:
    # 422 lets htmx swap the form in with its messages; the audit entry records why.
    request.state.problem_detail = "; ".join(f"{k}: {v}" for k, v in errors.items())
    context = _form_context(form, errors)
    return render(request, "fragments/network_form.html", context, status=422)


@router.post("/ui/network-checks", name="ui.network.check")
async def check_networks(
    request: Request, _: PageAdmin, network: Annotated[str, Form(max_length=63)] = ""
) -> HTMLResponse:
    """Compare every connected host with the networks (what changed is marked drifted); the
    answer is ``network``'s page when asked from it, else the list."""
    svc: Services = request.app.state.services
    request.state.audit_target = "cluster"
    await svc.networks.check()
    if network:
        return await _detail(request, svc, network, "checked every connected host")
    context = await _list_context(svc, notice="checked every connected host")
    return render(request, "fragments/network_list.html", context)


# -- one network -----------------------------------------------------------------------------
async def _context(svc: Services, name: str, **extra: Any) -> dict[str, Any]:
    return {"net": await svc.networks.get(name), "tasks": await _tasks(svc, name), **extra}


async def _detail(request: Request, svc: Services, name: str, notice: str = "") -> HTMLResponse:
    context = await _context(svc, name, notice=notice)
    return render(request, "fragments/network_detail.html", context)


@router.get("/networks/{name}", name="ui.network")
async def network_page(request: Request, name: str, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    context = {"active": "networks", **await _context(svc, name)}
    return render(request, "network.html", context)


@router.get("/ui/fragments/networks/{name}", name="ui.fragment.network")
async def network_fragment(request: Request, name: str, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "fragments/network_detail.html", await _context(svc, name))


def _edit_body(kind: NetworkKind, required: str, description: str, uplink: str) -> NetworkEdit:
    fields: dict[str, Any] = {"required": required == "1", "description": description}
    if kind is NetworkKind.BRIDGE and uplink.strip():
        fields["uplink"] = uplink.strip()
    try:
        return NetworkEdit.model_validate(fields)
    except ValidationError as exc:
        items = validation_items(exc.errors())
        raise InvalidRequest("; ".join(f"{i['loc']}: {i['msg']}" for i in items)) from None


@router.post("/ui/networks/{name}/edit", name="ui.network.edit")
async def edit_network(
    request: Request,
    name: str,
    who: PageAdmin,
    required: Annotated[str, Form(max_length=1)] = "",
    description: Annotated[str, Form(max_length=2048)] = "",
    uplink: Annotated[str, Form(max_length=64)] = "",
) -> HTMLResponse:
    """Change the network and apply it to every host, as a task (progress below the form)."""
    svc: Services = request.app.state.services
    current = await svc.networks.get(name)
    body = _edit_body(current.kind, required, description, uplink)
    await svc.networks.edit(who, name, body)
    return await _detail(request, svc, name, "changed: applying to every host (see Tasks)")


@router.post("/ui/networks/{name}/apply", name="ui.network.apply")
async def apply_network(request: Request, name: str, who: PageAdmin) -> HTMLResponse:
    """Apply the network to every connected host again (after drift, or a failure whose cause
    was fixed), as a task."""
    svc: Services = request.app.state.services
    await svc.networks.apply(who, name)
    return await _detail(request, svc, name, "applying to every host again (see Tasks)")


@router.post("/ui/networks/{name}/delete", name="ui.network.delete")
async def delete_network(request: Request, name: str, who: PageAdmin) -> Response:
    """Refused (409, the service's sentence shown by the page) while a VM's NIC uses it."""
    svc: Services = request.app.state.services
    await svc.networks.delete(who, name)
    return Response(status_code=204, headers={"HX-Redirect": "/networks"})
