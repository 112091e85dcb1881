"""Console tickets waiting to be used: only the SHA-256 of a ticket's secret is stored, and
taking a ticket deletes its row, so two instances can never both redeem one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from corral.store.db import serialise
from corral.store.tables import ConsoleTicket
from corral.store.token_secrets import hash_token


@dataclass(frozen=True)
class StoredTicket:
    """A ticket as stored (no secret): who may use it, for what, until when (epoch s)."""

    user: str
    role: str
    token_id: str | None
    session_id: str | None
    vm: str
    kind: str
    origin: str | None
    view_only: bool
    expires_at: float


def _stored(row: Any) -> StoredTicket:
    """A ticket from an ORM row or a ``RETURNING`` row (same attribute names)."""
    return StoredTicket(*(getattr(row, f.name) for f in fields(StoredTicket)))


def unused_tickets(
    session: Session, user: str, vm: str, kind: str, now: float
) -> list[StoredTicket]:
    """Prune expired tickets, then lock the table's caps (until the transaction ends) and
    return the live tickets of ``user`` or of ``vm``'s ``kind`` console: what caps count."""
    serialise(session, "console_tickets")
    session.execute(delete(ConsoleTicket).where(ConsoleTicket.expires_at <= now))
    rows = session.scalars(
        select(ConsoleTicket).where(
            or_(
                ConsoleTicket.user == user,
                (ConsoleTicket.vm == vm) & (ConsoleTicket.kind == kind),
            )
        )
    )
    return [_stored(row) for row in rows]


def add_ticket(session: Session, secret: str, ticket: StoredTicket) -> None:
    session.add(ConsoleTicket(secret_hash=hash_token(secret), **asdict(ticket)))
    session.flush()


def take_ticket(session: Session, secret: str) -> StoredTicket | None:
    """The ticket ``secret`` opens, deleted in the same statement; None if there is none (never
    issued, or already taken by this or another instance)."""
    row = session.execute(
        delete(ConsoleTicket)
        .where(ConsoleTicket.secret_hash == hash_token(secret))
        .returning(*ConsoleTicket.__table__.columns)
    ).one_or_none()
    return None if row is None else _stored(row)


def count_unused(session: Session, user: str, now: float) -> int:
    """How many live tickets ``user`` holds."""
    found = select(ConsoleTicket.secret_hash).where(
        ConsoleTicket.user == user, ConsoleTicket.expires_at > now
    )
    return len(session.scalars(found).all())
