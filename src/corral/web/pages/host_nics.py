"""The networks page's host NICs: each connected host's NICs with their labels, and the
administrators' label and unlabel actions (bridge networks name a label; NIC names differ
between hosts)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import TypeAdapter, ValidationError

from corral.errors import CorralError, InvalidRequest
from corral.http.validation import validation_items
from corral.model.network import HostNic, NicLabel
from corral.services.runtime import Services
from corral.web.page_auth import PageAdmin, PageViewer
from corral.web.templating import render

router = APIRouter(include_in_schema=False)

_LABEL: TypeAdapter[str] = TypeAdapter(NicLabel)


async def nic_context(svc: Services, **extra: Any) -> dict[str, Any]:
    """``host_nics``: (host, its NICs, why they cannot be listed) for every host."""
    rows: list[tuple[str, list[HostNic], str]] = []
    for host in svc.hosts.all():
        try:
            rows.append((host.name, await svc.nics.list_nics(host.name), ""))
        except CorralError as exc:
            rows.append((host.name, [], exc.message))
    return {"host_nics": rows, **extra}


def _label(text: str) -> str:
    """The label as the API's path would take it, or its message (422)."""
    try:
        return _LABEL.validate_python(text.strip())
    except ValidationError as exc:
        items = validation_items(exc.errors())
        raise InvalidRequest("label: " + "; ".join(i["msg"] for i in items)) from None


@router.get("/ui/fragments/host-nics", name="ui.fragment.host_nics")
async def nics_fragment(request: Request, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "fragments/host_nics.html", await nic_context(svc))


@router.post("/ui/hosts/{host}/nic-labels", name="ui.host.nic.label")
async def label_nic(
    request: Request,
    host: str,
    _: PageAdmin,
    nic: Annotated[str, Form(max_length=15)],
    label: Annotated[str, Form(max_length=64)],
) -> HTMLResponse:
    """Put a label on a NIC (a label names one NIC per host: set again, it moves); the host's
    bridge networks on that label are applied again."""
    svc: Services = request.app.state.services
    request.state.audit_target = f"{host}/{nic}/{label.strip()}"
    checked = _label(label)
    await svc.nics.label(host, nic, checked)
    notice = f"labelled {nic} on host {host} {checked!r}"
    return render(request, "fragments/host_nics.html", await nic_context(svc, notice=notice))


@router.post("/ui/hosts/{host}/nics/{nic}/labels/{label}/delete", name="ui.host.nic.unlabel")
async def unlabel_nic(
    request: Request, host: str, nic: str, label: str, _: PageAdmin
) -> HTMLResponse:
    svc: Services = request.app.state.services
    await svc.nics.unlabel(host, nic, label)
    notice = f"took label {label!r} off {nic} on host {host}"
    return render(request, "fragments/host_nics.html", await nic_context(svc, notice=notice))
