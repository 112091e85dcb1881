"""The dashboard: every host and every VM, kept current over Server-Sent Events."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from corral.services.runtime import Services
from corral.web.page_auth import PageViewer
from corral.web.templating import render

router = APIRouter(include_in_schema=False)


async def _context(svc: Services) -> dict[str, Any]:
    vms = await svc.vms.inventory.list_vms()
    hosts = await svc.hosts.list_hosts()
    return {"vms": vms, "hosts": hosts, "vm_counts": Counter(vm.host for vm in vms)}


@router.get("/", name="ui.dashboard")
async def dashboard(request: Request, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "dashboard.html", {"active": "dashboard", **await _context(svc)})


@router.get("/ui/fragments/vms", name="ui.fragment.vms")
async def vm_rows(request: Request, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "fragments/vm_rows.html", await _context(svc))


@router.get("/ui/fragments/hosts", name="ui.fragment.hosts")
async def host_rows(request: Request, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "fragments/host_rows.html", await _context(svc))
