"""One-time console tickets: how a browser opens a console WebSocket.

A page asks for a ticket (``POST /api/v1/vms/{name}/console/ticket``) and opens the WebSocket
with it. A ticket lives 30 seconds, opens one connection, and is bound to the user and their
session or token, to one VM and console kind, and to the Origin the page was served from (a
page of another site cannot use a ticket it stole: CVE-2015-0259's lesson). Unused tickets are
capped per user and per VM (``ConsoleCaps``): asking for tickets never used cannot pile up.

Tickets live in the database, so a ticket issued by one instance opens the console through
another; only a hash of the secret is stored, and redeeming deletes the row in one statement
(whichever instance asks first gets it, any other finds nothing). Expiry compares the issuing
and the redeeming instance's clocks: keep them in step (NTP).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.orm import Session

from corral.errors import PermissionDenied
from corral.model.auth import Role
from corral.services._db import Db
from corral.services.principal import Principal
from corral.services.stream_caps import ConsoleCaps, Holder
from corral.store.console_tickets import (
    StoredTicket,
    add_ticket,
    count_unused,
    take_ticket,
    unused_tickets,
)

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


def _ticket(secret: str, stored: StoredTicket) -> ConsoleTicket:
    principal = Principal(stored.user, Role(stored.role), stored.token_id, stored.session_id)
    kind = ConsoleKind(stored.kind)
    return ConsoleTicket(
        secret, principal, stored.vm, kind, stored.origin, stored.view_only, stored.expires_at
    )


def _check_fit(
    ticket: ConsoleTicket,
    now: float,
    caller: Principal,
    vm: str,
    kind: ConsoleKind,
    origin: str | None,
) -> None:
    """PermissionDenied saying why ``ticket`` does not open this console for this caller."""
    if ticket.expires_at <= now:
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


class ConsoleTickets:
    """Issue and redeem tickets in the database shared by every instance. ``clock``: epoch
    seconds (tickets are compared across processes and machines)."""

    def __init__(
        self, db: Db, caps: ConsoleCaps = DEFAULT_CAPS, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._caps = caps
        self._clock = clock

    async def issue(
        self, principal: Principal, vm: str, kind: ConsoleKind, origin: str | None
    ) -> ConsoleTicket:
        """A new ticket; RateLimited when the user or the VM holds too many unused ones."""
        now = self._clock()
        writer = principal.allows(Role.OPERATOR)
        stored = StoredTicket(
            principal.user,
            principal.role.value,
            principal.token_id,
            principal.session_id,
            vm,
            kind.value,
            origin,
            not writer,
            now + TICKET_TTL_S,
        )
        secret = secrets.token_urlsafe(32)

        def _issue(session: Session) -> None:
            held = [
                Holder(t.user, t.vm, t.kind, not t.view_only)
                for t in unused_tickets(session, principal.user, vm, kind.value, now)
            ]
            self._caps.check(
                held,
                Holder(principal.user, vm, kind.value, writer),
                "unused console ticket",
                f"open a console with one of them, or wait until they expire ({TICKET_TTL_S:g} s)",
            )
            add_ticket(session, secret, stored)

        await self._db(_issue)
        return _ticket(secret, stored)

    async def unused(self, user: str) -> int:
        """How many live tickets ``user`` holds (on every instance)."""
        now = self._clock()
        return await self._db(lambda s: count_unused(s, user, now))

    async def redeem(
        self, secret: str, caller: Principal, vm: str, kind: ConsoleKind, origin: str | None
    ) -> ConsoleTicket:
        """Use a ticket (once, whichever instance it was issued by): PermissionDenied saying
        why when it does not fit. A ticket presented is spent even when it does not fit."""
        stored = await self._db(lambda s: take_ticket(s, secret)) if secret else None
        if stored is None:
            raise PermissionDenied(
                "console ticket unknown or already used: ask for a new one (each opens one "
                "connection)"
            )
        ticket = _ticket(secret, stored)
        _check_fit(ticket, self._clock(), caller, vm, kind, origin)
        return ticket
