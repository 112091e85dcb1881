"""Console WebSockets opened with a one-time ticket: the browser's VNC screen and serial port.

``/api/v1/console/vnc?ticket=…`` (noVNC, subprotocol ``binary``) and
``/api/v1/console/serial?ticket=…`` (xterm.js). The caller authenticates as for any API call (the
page's session cookie, or a Bearer token) *and* presents a ticket issued to that same session
or token, for that console kind, from that Origin. Every refusal happens before the upgrade
(HTTP 401/403 problem+json, nothing relayed) and is audited.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, WebSocket

from corral.api.browser import origin_allowed
from corral.api.console_relay import relay
from corral.api.deps import authenticate
from corral.api.routers.serial import relay_serial
from corral.api.ws_common import bearer, refuse
from corral.errors import CorralError, HostError, PermissionDenied
from corral.model.auth import Role
from corral.rfb import RFBError
from corral.services.console_tickets import ConsoleKind, ConsoleTicket
from corral.services.rights_watch import until_rights_end
from corral.services.runtime import Services

log = logging.getLogger(__name__)

router = APIRouter(tags=["vms"])


async def _admit(ws: WebSocket, kind: ConsoleKind) -> ConsoleTicket | None:
    """The redeemed ticket, or None after refusing (and auditing) the handshake."""
    svc: Services = ws.app.state.services
    origin = ws.headers.get("origin")
    ticket_secret = ws.query_params.get("ticket", "")
    who = "anonymous"
    try:
        caller = await authenticate(ws, bearer(ws))
        who = caller.user
        if origin is not None and not origin_allowed(ws, origin):
            raise PermissionDenied(f"console connections from origin {origin!r} are refused")
        return svc.console_tickets.redeem(ticket_secret, caller, kind, origin)
    except CorralError as exc:
        await svc.audit.record(who, f"vm.console.{kind.value}", "", "denied", exc.message)
        await refuse(ws, exc)
        return None


@router.websocket("/console/vnc", name="console.vnc")
async def vnc_console(ws: WebSocket) -> None:
    svc: Services = ws.app.state.services
    ticket = await _admit(ws, ConsoleKind.VNC)
    if ticket is None:
        return
    action, user = "vm.console.vnc", ticket.principal.user
    try:
        try:
            upstream = await svc.vms.screen_source.upstream(ticket.vm)
        except RFBError as exc:
            raise HostError(f"the screen (VNC) of VM {ticket.vm!r} failed: {exc.message}") from exc
    except CorralError as exc:
        await svc.audit.record(user, action, ticket.vm, f"error: {exc.message}")
        await refuse(ws, exc)
        return
    mode = "view-only" if ticket.view_only else "full control"
    await svc.audit.record(user, action, ticket.vm, "ok", mode)
    subprotocols = ws.scope.get("subprotocols", [])
    await ws.accept(subprotocol="binary" if "binary" in subprotocols else None)
    needed = Role.VIEWER if ticket.view_only else Role.OPERATOR
    reason = await relay(
        ws,
        upstream,
        view_only=ticket.view_only,
        rights_end=lambda: until_rights_end(svc.auth, svc.bus, ticket.principal, needed),
    )
    log.info("console of VM %s for %s ended: %s", ticket.vm, user, reason)


@router.websocket("/console/serial", name="console.serial")
async def serial_console(ws: WebSocket) -> None:
    svc: Services = ws.app.state.services
    ticket = await _admit(ws, ConsoleKind.SERIAL)
    if ticket is None:
        return
    action, user = "vm.console.serial", ticket.principal.user
    try:
        console = await svc.vms.serial.open(ticket.vm)
    except CorralError as exc:
        await svc.audit.record(user, action, ticket.vm, f"error: {exc.message}")
        await refuse(ws, exc)
        return
    mode = "view-only" if ticket.view_only else "full control"
    await svc.audit.record(user, action, ticket.vm, "ok", mode)
    await ws.accept(subprotocol="binary" if "binary" in ws.scope.get("subprotocols", []) else None)
    needed = Role.VIEWER if ticket.view_only else Role.OPERATOR
    try:
        await relay_serial(
            ws,
            console,
            view_only=ticket.view_only,
            rights_end=lambda: until_rights_end(svc.auth, svc.bus, ticket.principal, needed),
        )
    finally:
        await console.close()
