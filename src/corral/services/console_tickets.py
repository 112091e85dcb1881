"""One-time console tickets: how a browser opens a console WebSocket.

A page asks for a ticket (``POST /api/v1/vms/{name}/console/ticket``) and opens the WebSocket
with it. A ticket lives 30 seconds, opens one connection, and is bound to the user and their
session or token, to one VM and console kind, and to the Origin the page was served from (a
page of another site cannot use a ticket it stole: CVE-2015-0259's lesson). Unused tickets are
capped per user and per VM (``ConsoleCaps``): asking for tickets never used cannot pile up.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from corral.errors import PermissionDenied
from corral.model.auth import Role
from corral.services.principal import Principal
from corral.services.stream_caps import ConsoleCaps, Holder

TICKET_TTL_S = 30.0
#: Without settings: what ``Settings`` defaults to.
DEFAULT_CAPS = ConsoleCaps(per_user=8, per_vm=16, writer_reserve=4)


class ConsoleKind(StrEnum):
    VNC = "vnc"
    SERIAL = "serial"


@dataclass(frozen=True)
class ConsoleTicket:
    secret: str
    principal: Principal
    vm: str
    kind: ConsoleKind
    origin: str | None
    view_only: bool
    expires_at: float


def _same_caller(a: Principal, b: Principal) -> bool:
    return a.user == b.user and a.session_id == b.session_id and a.token_id == b.token_id


class ConsoleTickets:
    """In memory, per manager process (a console connects to the process that issued it)."""

    def __init__(
        self, caps: ConsoleCaps = DEFAULT_CAPS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._caps = caps
        self._clock = clock
        self._tickets: dict[str, ConsoleTicket] = {}

    def issue(
        self, principal: Principal, vm: str, kind: ConsoleKind, origin: str | None
    ) -> ConsoleTicket:
        """A new ticket; RateLimited when the user or the VM holds too many unused ones."""
        now = self._clock()
        self._prune(now)
        writer = principal.allows(Role.OPERATOR)
        held = [Holder(t.principal.user, t.vm, t.kind.value, not t.view_only) for t in self]
        self._caps.check(
            held,
            Holder(principal.user, vm, kind.value, writer),
            "unused console ticket",
            f"open a console with one of them, or wait until they expire ({TICKET_TTL_S:g} s)",
        )
        ticket = ConsoleTicket(
            secret=secrets.token_urlsafe(32),
            principal=principal,
            vm=vm,
            kind=kind,
            origin=origin,
            view_only=not writer,
            expires_at=now + TICKET_TTL_S,
        )
        self._tickets[ticket.secret] = ticket
        return ticket

    def __iter__(self) -> Iterator[ConsoleTicket]:
        return iter(list(self._tickets.values()))

    def _prune(self, now: float) -> None:
        for secret in [s for s, t in self._tickets.items() if t.expires_at <= now]:
            del self._tickets[secret]

    def redeem(
        self, secret: str, caller: Principal, vm: str, kind: ConsoleKind, origin: str | None
    ) -> ConsoleTicket:
        """Use a ticket (once): PermissionDenied saying why when it does not fit."""
        ticket = self._tickets.pop(secret, None) if secret else None
        if ticket is None or not hmac.compare_digest(ticket.secret, secret):
            raise PermissionDenied(
                "console ticket unknown or already used: ask for a new one (each opens one "
                "connection)"
            )
        if ticket.expires_at <= self._clock():
            raise PermissionDenied(
                f"console ticket expired (tickets live {TICKET_TTL_S:g} s): ask for a new one"
            )
        if not _same_caller(ticket.principal, caller):
            raise PermissionDenied("this console ticket was issued to another session")
        if ticket.vm != vm:
            raise PermissionDenied(f"this ticket opens the console of VM {ticket.vm!r}, not {vm!r}")
        if ticket.kind is not kind:
            raise PermissionDenied(f"this ticket opens a {ticket.kind.value} console, not {kind}")
        if ticket.origin != origin:
            raise PermissionDenied(
                f"console ticket issued to origin {ticket.origin or '(none)'}, used from "
                f"{origin or '(none)'}"
            )
        return ticket
