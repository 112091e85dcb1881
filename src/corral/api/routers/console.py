"""Scripted console automation: type on a VM's keyboard, wait for an image on its screen."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from corral.api.deps import Operator, Svc, Viewer
from corral.api.openapi import on_host, problem_responses
from corral.api.params import NamePath
from corral.model.auth import Role
from corral.model.console import (
    ConsoleTicketInfo,
    ConsoleTicketRequest,
    ScreenMatch,
    TypeRequest,
    WaitScreenRequest,
)
from corral.services.console_tickets import TICKET_TTL_S, ConsoleKind
from corral.services.stream_caps import Holder

router = APIRouter(tags=["vms"])

_NOT_RUNNING = (409, "the VM is not running")
_NOT_RUNNING_OR_TOO_WIDE = (
    409,
    "the VM is neither running nor paused, or the template is larger than its screen",
)
_SLOW_SCREEN = (504, "the VM's screen (VNC) did not answer in time")


@router.post(
    "/vms/{name}/console/type",
    name="vm.console.type",
    status_code=204,
    responses=on_host(_NOT_RUNNING, _SLOW_SCREEN),
)
async def type_text(name: NamePath, body: TypeRequest, svc: Svc, _: Operator) -> Response:
    """Type ``text`` (US layout), then press ``keys``; answers once the VM's display has
    received every key event."""
    await svc.vms.console.type_text(name, body)
    return Response(status_code=204)


@router.post(
    "/vms/{name}/console/wait-screen",
    name="vm.console.wait_screen",
    responses=on_host(
        _NOT_RUNNING_OR_TOO_WIDE,
        (504, "the image did not appear within timeout_s, or the screen did not answer"),
    ),
)
async def wait_screen(
    name: NamePath, body: WaitScreenRequest, svc: Svc, _: Operator
) -> ScreenMatch:
    """Wait until the PNG template appears on the screen, pixel for pixel (operators only: the
    request may hold a VNC connection for up to ``timeout_s``). A template that is not an opaque
    PNG of at most 4096x4096 pixels is refused with 422; one larger than the screen with 409."""
    return await svc.vms.console.wait_screen(name, body.image_png(), body.timeout_s)


@router.post(
    "/vms/{name}/console/ticket",
    name="vm.console.ticket",
    status_code=201,
    responses=problem_responses(
        (409, "a VNC ticket for a VM that has no screen (s390x VMs get no graphics device)"),
        (429, "the caller, or the VM, holds as many open consoles or unused tickets as allowed"),
    ),
)
async def console_ticket(
    name: str, request: Request, svc: Svc, who: Viewer, body: ConsoleTicketRequest | None = None
) -> ConsoleTicketInfo:
    """A one-time ticket (30 s, one connection) to open the VM's console WebSocket from this
    session or token and this Origin. Viewers get view-only consoles. Unused tickets are capped
    per user (``console_max_tickets_per_user``) and per VM (``console_max_per_vm``, of which
    view-only users never take the last ``console_writer_reserve``), and so are open consoles:
    a caller at that cap is told here, where a page can show why, rather than only at the
    WebSocket's handshake."""
    kind = ConsoleKind((body or ConsoleTicketRequest()).kind)
    if kind is ConsoleKind.VNC:
        await svc.vms.screen_source.check_viewable(name)
    else:
        await svc.vms.serial.check_open(name)
    svc.consoles.check(Holder(who.user, name, kind.value, writer=who.allows(Role.OPERATOR)))
    ticket = await svc.console_tickets.issue(who, name, kind, request.headers.get("origin"))
    return ConsoleTicketInfo(
        ticket=ticket.secret,
        kind=kind.value,
        vm=name,
        url=f"/api/v1/vms/{name}/{kind.value}?ticket={ticket.secret}",
        expires_in_s=TICKET_TTL_S,
        view_only=ticket.view_only,
    )
