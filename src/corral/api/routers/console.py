"""Scripted console automation: type on a VM's keyboard, wait for an image on its screen."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from corral.api.deps import Operator, Svc, Viewer
from corral.model.console import (
    ConsoleTicketInfo,
    ConsoleTicketRequest,
    ScreenMatch,
    TypeRequest,
    WaitScreenRequest,
)
from corral.services.console_tickets import TICKET_TTL_S, ConsoleKind

router = APIRouter(tags=["vms"])


@router.post("/vms/{name}/console/type", name="vm.console.type", status_code=204)
async def type_text(name: str, body: TypeRequest, svc: Svc, _: Operator) -> Response:
    """Type ``text`` (US layout), then press ``keys``; answers once the VM's display has
    received every key event."""
    await svc.vms.console.type_text(name, body)
    return Response(status_code=204)


@router.post(
    "/vms/{name}/console/wait-screen",
    name="vm.console.wait_screen",
    responses={504: {"description": "the image did not appear within timeout_s"}},
)
async def wait_screen(name: str, body: WaitScreenRequest, svc: Svc, _: Operator) -> ScreenMatch:
    """Wait until the PNG template appears on the screen, pixel for pixel (operators only: the
    request may hold a VNC connection for up to ``timeout_s``)."""
    return await svc.vms.console.wait_screen(name, body.image_png(), body.timeout_s)


@router.post(
    "/vms/{name}/console/ticket",
    name="vm.console.ticket",
    status_code=201,
)
async def console_ticket(
    name: str, request: Request, svc: Svc, who: Viewer, body: ConsoleTicketRequest | None = None
) -> ConsoleTicketInfo:
    """A one-time ticket (30 s, one connection) to open the VM's console WebSocket from this
    session or token and this Origin. Viewers get view-only consoles."""
    kind = ConsoleKind((body or ConsoleTicketRequest()).kind)
    if kind is ConsoleKind.VNC:
        await svc.vms.screen_source.check_viewable(name)
    else:
        await svc.vms.serial.check_open(name)
    ticket = svc.console_tickets.issue(who, name, kind, request.headers.get("origin"))
    return ConsoleTicketInfo(
        ticket=ticket.secret,
        kind=kind.value,
        vm=name,
        url=f"/api/v1/vms/{name}/{kind.value}?ticket={ticket.secret}",
        expires_in_s=TICKET_TTL_S,
        view_only=ticket.view_only,
    )
