"""Console WebSockets: a VM's screen (VNC) and its first serial port.

``/api/v1/vms/NAME/vnc?ticket=…`` (noVNC, subprotocol ``binary``) and
``/api/v1/vms/NAME/serial?ticket=…`` (xterm.js): the caller authenticates as for any API call
(the page's session cookie, or a Bearer token) *and* presents a one-time ticket issued to that
same session or token, for that VM and console kind, from that Origin. The serial console also
takes a Bearer token alone (operators; ``corral vm console``). Every refusal happens before the
upgrade (HTTP 401/403 problem+json, nothing relayed) and is audited.
"""

from __future__ import annotations

import contextlib
import logging

from fastapi import APIRouter, WebSocket

from corral.api.console_relay import relay
from corral.api.deps import authenticate
from corral.api.serial_relay import relay_serial
from corral.api.ws_common import bearer, refuse
from corral.errors import CorralError, HostError, PermissionDenied, RateLimited
from corral.http.browser import origin_allowed
from corral.model.auth import Role
from corral.rfb import RFBError, Upstream
from corral.services.console_tickets import ConsoleKind, ConsoleTicket
from corral.services.principal import Principal
from corral.services.rights_watch import until_rights_end
from corral.services.runtime import Services
from corral.services.stream_caps import Holder

log = logging.getLogger(__name__)

router = APIRouter(tags=["vms"])


async def _admit(ws: WebSocket, name: str, kind: ConsoleKind) -> ConsoleTicket | None:
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
        return await svc.console_tickets.redeem(ticket_secret, caller, name, kind, origin)
    except CorralError as exc:
        await svc.audit.record(who, f"vm.console.{kind.value}", name, "denied", exc.message)
        await refuse(ws, exc)
        return None


@router.websocket("/vms/{name}/vnc", name="vm.console.vnc")
async def vnc_console(ws: WebSocket, name: str) -> None:
    svc: Services = ws.app.state.services
    ticket = await _admit(ws, name, ConsoleKind.VNC)
    if ticket is None:
        return
    action, user = "vm.console.vnc", ticket.principal.user
    holder = Holder(user, name, ConsoleKind.VNC.value, writer=not ticket.view_only)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(svc.consoles.hold(holder))
            await svc.vms.screen_source.check_viewable(name)
        except CorralError as exc:
            await _refuse(ws, svc, user, action, name, exc)
            return
        await _vnc_session(ws, svc, ticket, name)


async def _refuse(
    ws: WebSocket, svc: Services, user: str, action: str, name: str, exc: CorralError
) -> None:
    """Refuse the handshake (before the upgrade) and audit why."""
    if isinstance(exc, RateLimited):
        await svc.audit.record(user, action, name, "denied", exc.message)
    else:
        await svc.audit.record(user, action, name, f"error: {exc.message}")
    await refuse(ws, exc)


async def _vnc_session(ws: WebSocket, svc: Services, ticket: ConsoleTicket, name: str) -> None:
    """Accept, then relay; the VM's screen is opened only once the browser has spoken."""
    action, user = "vm.console.vnc", ticket.principal.user

    async def open_upstream() -> Upstream:
        try:
            try:
                upstream = await svc.vms.screen_source.upstream(name)
            except RFBError as exc:
                raise HostError(f"the screen (VNC) of VM {name!r} failed: {exc.message}") from exc
        except CorralError as exc:
            await svc.audit.record(user, action, name, f"error: {exc.message}")
            raise
        await svc.audit.record(user, action, name, "ok", "view-only" if ticket.view_only else "")
        return upstream

    subprotocols = ws.scope.get("subprotocols", [])
    await ws.accept(subprotocol="binary" if "binary" in subprotocols else None)
    needed = Role.VIEWER if ticket.view_only else Role.OPERATOR
    reason = await relay(
        ws,
        open_upstream,
        view_only=ticket.view_only,
        rights_end=lambda: until_rights_end(svc.auth, svc.bus, ticket.principal, needed),
        handshake_timeout_s=svc.settings.console_handshake_timeout_s,
    )
    log.info("console of VM %s for %s ended: %s", name, user, reason)


async def _bearer_operator(ws: WebSocket, name: str) -> Principal | None:
    """``corral vm console``: an operator's API token alone opens the serial console."""
    svc: Services = ws.app.state.services
    who = "anonymous"
    try:
        principal = await authenticate(ws, bearer(ws))
        who = principal.user
        principal.require(Role.OPERATOR)
    except CorralError as exc:
        await svc.audit.record(who, "vm.serial", name, "denied", exc.message)
        await refuse(ws, exc)
        return None
    return principal


@router.websocket("/vms/{name}/serial", name="vm.serial")
async def serial_console(ws: WebSocket, name: str) -> None:
    svc: Services = ws.app.state.services
    view_only = False
    if "ticket" in ws.query_params:
        ticket = await _admit(ws, name, ConsoleKind.SERIAL)
        if ticket is None:
            return
        principal, view_only = ticket.principal, ticket.view_only
    else:
        found = await _bearer_operator(ws, name)
        if found is None:
            return
        principal = found
    action, user = "vm.serial", principal.user
    holder = Holder(user, name, ConsoleKind.SERIAL.value, writer=not view_only)
    async with contextlib.AsyncExitStack() as held:
        try:
            held.enter_context(svc.consoles.hold(holder))
            tap = await held.enter_async_context(svc.vms.serial.tap(name, writer=not view_only))
        except CorralError as exc:
            await _refuse(ws, svc, user, action, name, exc)
            return
        await svc.audit.record(user, action, name, "ok", "view-only" if view_only else "")
        await ws.accept(
            subprotocol="binary" if "binary" in ws.scope.get("subprotocols", []) else None
        )
        needed = Role.VIEWER if view_only else Role.OPERATOR
        await relay_serial(
            ws, tap, rights_end=lambda: until_rights_end(svc.auth, svc.bus, principal, needed)
        )
