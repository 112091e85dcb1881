"""Corral instances sharing one database, and the clock they agree on."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from corral.store.coltypes import utcnow
from corral.store.tables import Instance


def db_now(session: Session) -> datetime:
    """The database's clock on PostgreSQL (instances on several machines compare lease expiry
    against one clock, not their own), this machine's on SQLite (one instance only)."""
    if session.get_bind().dialect.name != "postgresql":
        return utcnow()
    value = session.scalar(select(func.clock_timestamp()))
    assert isinstance(value, datetime)
    return value


def register_instance(session: Session, instance_id: str, hostname: str, pid: int) -> None:
    now = db_now(session)
    session.add(
        Instance(id=instance_id, hostname=hostname, pid=pid, started_at=now, heartbeat_at=now)
    )
    session.flush()


def heartbeat(session: Session, instance_id: str) -> None:
    session.execute(
        update(Instance).where(Instance.id == instance_id).values(heartbeat_at=db_now(session))
    )


def stop_instance(session: Session, instance_id: str) -> None:
    session.execute(
        update(Instance).where(Instance.id == instance_id).values(stopped_at=db_now(session))
    )


def live_instances(session: Session, within: timedelta) -> list[Instance]:
    """Instances that have not stopped and sent a heartbeat within ``within``, oldest first."""
    since = db_now(session) - within
    query = (
        select(Instance)
        .where(Instance.stopped_at.is_(None), Instance.heartbeat_at >= since)
        .order_by(Instance.started_at, Instance.id)
    )
    return list(session.scalars(query))


def prune_instances(session: Session, older_than: timedelta) -> int:
    """Forget instances whose last heartbeat is older than ``older_than``; how many."""
    before = db_now(session) - older_than
    gone = list(session.scalars(select(Instance).where(Instance.heartbeat_at < before)))
    for row in gone:
        session.delete(row)
    return len(gone)
