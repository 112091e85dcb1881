"""Leases: a named job that one instance holds at a time, with a fencing token.

Taking a lease that is free or expired raises its token; renewing keeps it. A holder that
lost its lease (it paused longer than the lease, another took it) learns it at its next
renewal, and writes checked with :func:`lease_valid` are refused from then on.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
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
    """:func:`take_lease` for each of ``names`` in one transaction: one SELECT … FOR UPDATE
    for all their rows (sorted: two instances taking the same names lock their rows in one
    order, never a deadlock) and one UPDATE for those ``holder`` renews; the rare rest (free,
    expired, new) row by row. An instance renews every reconcile:HOST lease each second: at
    500 hosts, one query per lease held SQLite's write lock a good part of every second."""
    now = db_now(session)
    expires = now + ttl
    query = select(Lease).where(Lease.name.in_(names)).order_by(Lease.name).with_for_update()
    rows = {row.name: row for row in session.scalars(query)}
    tokens: dict[str, int | None] = {}
    renewed = []
    for name in sorted(names):
        lease = rows.get(name)
        if lease is not None and lease.holder == holder and lease.expires_at > now:
            renewed.append(name)
            tokens[name] = lease.token
        else:
            tokens[name] = take_lease(session, name, holder, ttl)
    if renewed:
        session.execute(
            update(Lease)
            .where(Lease.name.in_(renewed))
            .values(expires_at=expires)
            .execution_options(synchronize_session=False)
        )
    return tokens


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
