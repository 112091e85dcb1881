"""The console pages: the VM's screen (noVNC) and its serial port (xterm.js)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from corral.services.runtime import Services
from corral.web.page_auth import PageViewer
from corral.web.security_headers import CSP
from corral.web.templating import render

router = APIRouter(include_in_schema=False)

#: xterm.js writes its theme into a <style> element: styles (never scripts) may be inline there.
TERMINAL_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


@router.get("/vms/{name}/console", name="ui.vm.console")
async def console_page(request: Request, name: str, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    vm = await svc.vms.inventory.get(name)
    return render(request, "console.html", {"active": "dashboard", "vm": vm})


@router.get("/vms/{name}/terminal", name="ui.vm.terminal")
async def terminal_page(request: Request, name: str, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    vm = await svc.vms.inventory.get(name)
    page = render(request, "terminal.html", {"active": "dashboard", "vm": vm})
    page.headers["Content-Security-Policy"] = TERMINAL_CSP
    return page
