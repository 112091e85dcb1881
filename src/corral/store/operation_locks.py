"""Per-VM operation locks across instances: a row per VM busy with a long operation.

A row counts while its ``expires_at`` lies ahead: the holding instance renews its rows every
second, so the locks of an instance that died lapse with its leases.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from corral.store.instances import db_now
from corral.store.tables import OperationLock


def take_operation_lock(
    session: Session, vm: str, operation: str, holder: str, ttl: timedelta
) -> str | None:
    """Lock ``vm`` for ``operation``: None when taken, else the operation holding it. Two
    instances inserting at once: one fails on the primary key (an IntegrityError for the
    caller, who retries or reports the VM busy)."""
    now = db_now(session)
    row = session.scalars(
        select(OperationLock).where(OperationLock.vm == vm).with_for_update()
    ).one_or_none()
    if row is not None and row.expires_at > now:
        return row.operation
    if row is not None:
        session.delete(row)
        session.flush()
    session.add(OperationLock(vm=vm, operation=operation, holder=holder, expires_at=now + ttl))
    session.flush()
    return None


def release_operation_lock(session: Session, vm: str, holder: str) -> None:
    session.execute(
        delete(OperationLock).where(OperationLock.vm == vm, OperationLock.holder == holder)
    )


def renew_operation_locks(session: Session, holder: str, ttl: timedelta) -> None:
    session.execute(
        update(OperationLock)
        .where(OperationLock.holder == holder)
        .values(expires_at=db_now(session) + ttl)
    )


def operation_locks(session: Session) -> dict[str, str]:
    """Every VM busy in the cluster, with its operation."""
    now = db_now(session)
    rows = session.execute(
        select(OperationLock.vm, OperationLock.operation).where(OperationLock.expires_at > now)
    )
    return {vm: operation for vm, operation in rows}


def forget_operation_locks(session: Session) -> None:
    """Drop every row (SQLite at start: the one instance's predecessor left them)."""
    session.execute(delete(OperationLock))
