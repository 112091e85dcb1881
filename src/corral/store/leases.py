"""Leases: a named job that one instance holds at a time, with a fencing token.

Taking a lease that is free or expired raises its token; renewing keeps it. A holder that
lost its lease (it paused longer than the lease, another took it) learns it at its next
renewal, and writes checked with :func:`lease_valid` are refused from then on.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.store.instances import db_now
from corral.store.tables import Lease


def take_lease(session: Session, name: str, holder: str, ttl: timedelta) -> int | None:
    """Take or renew ``name`` for ``holder`` until now + ``ttl``: its token, or None while
    another holder's lease lasts."""
    now = db_now(session)
    lease = session.scalars(select(Lease).where(Lease.name == name).with_for_update()).one_or_none()
    if lease is None:
        session.add(Lease(name=name, holder=holder, token=1, expires_at=now + ttl))
        session.flush()
        return 1
    if lease.holder == holder and lease.expires_at > now:
        lease.expires_at = now + ttl
        return lease.token
    if lease.holder is not None and lease.expires_at > now:
        return None
    lease.holder = holder
    lease.token += 1
    lease.expires_at = now + ttl
    return lease.token


def take_leases(
    session: Session, names: list[str], holder: str, ttl: timedelta
) -> dict[str, int | None]:
    """:func:`take_lease` for each of ``names`` in one transaction (sorted: two instances
    taking the same names lock their rows in one order, never a deadlock)."""
    return {name: take_lease(session, name, holder, ttl) for name in sorted(names)}


def release_lease(session: Session, name: str, holder: str) -> None:
    """Give ``name`` up at once (a stopping instance), if ``holder`` still has it."""
    lease = session.scalars(select(Lease).where(Lease.name == name).with_for_update()).one_or_none()
    if lease is not None and lease.holder == holder:
        lease.holder = None
        lease.expires_at = db_now(session)


def lease_valid(session: Session, name: str, token: int) -> bool:
    """Whether ``token`` is still the current, unexpired holding of ``name``: a job checks this
    in the transaction of a write a stale holder must not make (it locks the lease row, so no
    one takes the lease over until the write commits)."""
    lease = session.scalars(select(Lease).where(Lease.name == name).with_for_update()).one_or_none()
    return (
        lease is not None
        and lease.holder is not None
        and lease.token == token
        and lease.expires_at > db_now(session)
    )
