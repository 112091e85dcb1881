"""Host power: standby flags, drivers (settings and encrypted secrets), utilisation samples
with down-sampling (raw for an hour, 1-minute means for a day)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, case, delete, func, insert, select
from sqlalchemy.orm import Session

from corral.model.power import HostSample, VmSample
from corral.store.coltypes import utcnow
from corral.store.hosts import get_host
from corral.store.tables import Host, HostPower, HostSampleRow, VmSampleRow

RAW_KEEP = timedelta(hours=1)
KEEP = timedelta(hours=24)


@dataclass(frozen=True)
class StoredPower:
    """A host's power row as stored (``secret`` still encrypted)."""

    host: str
    driver: str | None
    settings: dict[str, Any]
    secret: str | None
    model: dict[str, Any] | None


def set_standby(session: Session, name: str, standby: bool) -> None:
    get_host(session, name).standby = standby
    session.flush()


def standby_hosts(session: Session) -> set[str]:
    return set(session.scalars(select(Host.name).where(Host.standby)))


def get_power(session: Session, name: str) -> StoredPower:
    host = get_host(session, name)
    row = session.get(HostPower, host.id)
    if row is None:
        return StoredPower(name, None, {}, None, None)
    return StoredPower(name, row.driver, dict(row.settings or {}), row.secret, row.model)


def all_power(session: Session) -> dict[str, StoredPower]:
    rows = session.execute(
        select(Host.name, HostPower).join(HostPower, HostPower.host_id == Host.id)
    )
    return {
        name: StoredPower(name, row.driver, dict(row.settings or {}), row.secret, row.model)
        for name, row in rows
    }


def put_power(
    session: Session,
    name: str,
    *,
    driver: str | None,
    settings: dict[str, Any],
    secret: str | None,
    model: dict[str, Any] | None,
) -> None:
    host = get_host(session, name)
    row = session.get(HostPower, host.id)
    if row is None:
        row = HostPower(host_id=host.id)
        session.add(row)
    row.driver, row.settings, row.secret, row.model = driver, settings, secret, model
    row.updated_at = utcnow()
    session.flush()


def delete_power(session: Session, name: str) -> None:
    host = get_host(session, name)
    session.execute(delete(HostPower).where(HostPower.host_id == host.id))


# -- samples ---------------------------------------------------------------------------------
def add_samples(session: Session, hosts: Sequence[HostSample], vms: Sequence[VmSample]) -> None:
    # Bulk inserts (one executemany each), not ORM objects: at 10,000 VMs a round's samples
    # as objects cost ~6 times the CPU, with the write lock held all along.
    if hosts:
        session.execute(
            insert(HostSampleRow),
            [
                {
                    "host": s.host,
                    "at": s.at,
                    "cpu": s.cpu,
                    "memory_used_mib": s.memory_used_mib,
                    "memory_total_mib": s.memory_total_mib,
                    "standby": s.standby,
                    "minute": False,
                }
                for s in hosts
            ],
        )
    if vms:
        session.execute(
            insert(VmSampleRow),
            [
                {
                    "vm": s.vm,
                    "host": s.host,
                    "at": s.at,
                    "cpu": s.cpu,
                    "memory_mib": s.memory_mib,
                    "minute": False,
                }
                for s in vms
            ],
        )


def host_samples(session: Session, since: datetime) -> list[HostSample]:
    """Every host sample taken at or after ``since``, oldest first."""
    # Columns, not ORM objects, and models built without validation (the rows were validated
    # on the way in): placement reads 500 hosts' samples over its window at every decision.
    rows = session.execute(
        select(
            HostSampleRow.host,
            HostSampleRow.at,
            HostSampleRow.cpu,
            HostSampleRow.memory_used_mib,
            HostSampleRow.memory_total_mib,
            HostSampleRow.standby,
            HostSampleRow.minute,
        )
        .where(HostSampleRow.at >= since)
        .order_by(HostSampleRow.at)
    )
    return [
        HostSample.model_construct(
            host=host,
            at=at,
            cpu=cpu,
            memory_used_mib=used,
            memory_total_mib=total,
            standby=standby,
            minute=minute,
        )
        for host, at, cpu, used, total, standby, minute in rows
    ]


def host_cpu_means(session: Session, since: datetime) -> dict[str, float]:
    """Each host's mean CPU utilisation (each sample capped at 1) over its samples taken at or
    after ``since``, standby ones left out: what placement needs of the samples, one row per
    host instead of every sample of the window (500 hosts x a sample every 10 s)."""
    capped = case((HostSampleRow.cpu > 1.0, 1.0), else_=HostSampleRow.cpu)
    rows = session.execute(
        select(HostSampleRow.host, func.avg(capped))
        .where(HostSampleRow.at >= since, HostSampleRow.standby.is_(False))
        .group_by(HostSampleRow.host)
    )
    return {host: float(mean) for host, mean in rows}


def vm_samples(session: Session, since: datetime) -> list[VmSample]:
    rows = session.execute(
        select(
            VmSampleRow.vm,
            VmSampleRow.host,
            VmSampleRow.at,
            VmSampleRow.cpu,
            VmSampleRow.memory_mib,
            VmSampleRow.minute,
        )
        .where(VmSampleRow.at >= since)
        .order_by(VmSampleRow.at)
    )
    return [
        VmSample.model_construct(vm=vm, host=host, at=at, cpu=cpu, memory_mib=memory, minute=minute)
        for vm, host, at, cpu, memory, minute in rows
    ]


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def downsample(session: Session, now: datetime | None = None) -> tuple[int, int]:
    """Raw samples older than an hour become one mean per minute (and per host or VM);
    anything older than a day goes. Returns (rows folded, rows deleted)."""
    now = now or utcnow()
    folded = _fold_hosts(session, now - RAW_KEEP) + _fold_vms(session, now - RAW_KEEP)
    old = now - KEEP
    gone = 0
    for table in (HostSampleRow, VmSampleRow):
        result: CursorResult[Any] = session.execute(delete(table).where(table.at < old))  # type: ignore[assignment]
        gone += result.rowcount or 0
    session.flush()
    return folded, gone


def _fold_hosts(session: Session, before: datetime) -> int:
    rows = list(
        session.scalars(
            select(HostSampleRow).where(HostSampleRow.at < before, HostSampleRow.minute.is_(False))
        )
    )
    groups: dict[tuple[str, datetime], list[HostSampleRow]] = defaultdict(list)
    for row in rows:
        groups[(row.host, _minute(row.at))].append(row)
    for (host, minute), members in groups.items():
        n = len(members)
        session.add(
            HostSampleRow(
                host=host,
                at=minute,
                cpu=sum(m.cpu for m in members) / n,
                memory_used_mib=round(sum(m.memory_used_mib for m in members) / n),
                memory_total_mib=max(m.memory_total_mib for m in members),
                standby=all(m.standby for m in members),
                minute=True,
            )
        )
    ids = [r.id for r in rows]
    if ids:
        session.execute(delete(HostSampleRow).where(HostSampleRow.id.in_(ids)))
    return len(ids)


def _fold_vms(session: Session, before: datetime) -> int:
    rows = list(
        session.scalars(
            select(VmSampleRow).where(VmSampleRow.at < before, VmSampleRow.minute.is_(False))
        )
    )
    groups: dict[tuple[str, datetime], list[VmSampleRow]] = defaultdict(list)
    for row in rows:
        groups[(row.vm, _minute(row.at))].append(row)
    for (vm, minute), members in groups.items():
        n = len(members)
        session.add(
            VmSampleRow(
                vm=vm,
                host=members[-1].host,
                at=minute,
                cpu=sum(m.cpu for m in members) / n,
                memory_mib=round(sum(m.memory_mib for m in members) / n),
                minute=True,
            )
        )
    ids = [r.id for r in rows]
    if ids:
        session.execute(delete(VmSampleRow).where(VmSampleRow.id.in_(ids)))
    return len(ids)


def forget_host_samples(session: Session, name: str) -> None:
    session.execute(delete(HostSampleRow).where(HostSampleRow.host == name))
