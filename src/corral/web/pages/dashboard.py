"""The dashboard: every host, the VMs' counts and a page of VMs, kept current over Server-Sent
Events (an event re-fetches the fragments; the events carry changes, never lists)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from corral.services.runtime import Services
from corral.services.vms.listing import VmQuery
from corral.web.page_auth import PageViewer
from corral.web.templating import render

router = APIRouter(include_in_schema=False)

#: VMs per page of the dashboard's table.
PAGE_SIZE = 50

#: A previous page's ``next_cursor`` (the API's shape: base64url).
Cursor = Annotated[str | None, Query(max_length=2048, pattern=r"^[A-Za-z0-9_-]+$")]


async def _vm_page(svc: Services, cursor: str | None) -> dict[str, Any]:
    page = await svc.vms.listing.page(VmQuery(limit=PAGE_SIZE, cursor=cursor))
    return {"vms": page.items, "next_cursor": page.next_cursor, "cursor": cursor}


async def _hosts(svc: Services) -> dict[str, Any]:
    summary = await svc.vms.listing.summary()
    return {"hosts": await svc.hosts.list_hosts(), "vm_counts": summary.by_host}


@router.get("/", name="ui.dashboard")
async def dashboard(request: Request, _: PageViewer, cursor: Cursor = None) -> HTMLResponse:
    svc: Services = request.app.state.services
    context = {**await _vm_page(svc, cursor), **await _hosts(svc)}
    context["summary"] = await svc.vms.listing.summary()
    return render(request, "dashboard.html", {"active": "dashboard", **context})


@router.get("/ui/fragments/vms", name="ui.fragment.vms")
async def vm_rows(request: Request, _: PageViewer, cursor: Cursor = None) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "fragments/vm_page.html", await _vm_page(svc, cursor))


@router.get("/ui/fragments/vm-summary", name="ui.fragment.vm_summary")
async def vm_summary(request: Request, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    summary = await svc.vms.listing.summary()
    return render(request, "fragments/vm_summary.html", {"summary": summary})


@router.get("/ui/fragments/hosts", name="ui.fragment.hosts")
async def host_rows(request: Request, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "fragments/host_rows.html", await _hosts(svc))
