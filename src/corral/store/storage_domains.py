"""Storage domains and each host's reach of them (the built-in ``local`` domain has no row)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.errors import Conflict
from corral.model.common import did_you_mean
from corral.model.storage_domain import ReachState, StorageDomainKind
from corral.store._integrity import conflict_on_integrity, not_found
from corral.store.hosts import get_host
from corral.store.tables import StorageDomainHostRow, StorageDomainRow


@dataclass(frozen=True)
class StoredReach:
    """One host's reach of a domain as last checked."""

    host: str
    state: ReachState
    reason: str | None = None
    checked_at: datetime | None = None
    capacity_bytes: int | None = None
    free_bytes: int | None = None


@dataclass(frozen=True)
class StoredDomain:
    name: str
    kind: StorageDomainKind
    settings: dict[str, str]
    marker: str | None
    created_at: datetime
    created_by: str
    reach: dict[str, StoredReach] = field(default_factory=dict)


def _stored(row: StorageDomainRow) -> StoredDomain:
    reach = {
        r.host.name: StoredReach(
            host=r.host.name,
            state=ReachState(r.state),
            reason=r.reason,
            checked_at=r.checked_at,
            capacity_bytes=r.capacity_bytes,
            free_bytes=r.free_bytes,
        )
        for r in row.reach
    }
    return StoredDomain(
        name=row.name,
        kind=StorageDomainKind(row.kind),
        settings=dict(row.settings),
        marker=row.marker,
        created_at=row.created_at,
        created_by=row.created_by,
        reach=reach,
    )


def _row(session: Session, name: str) -> StorageDomainRow:
    row = session.scalars(select(StorageDomainRow).where(StorageDomainRow.name == name)).first()
    if row is None:
        names = ["local", *session.scalars(select(StorageDomainRow.name)).all()]
        hint = did_you_mean(name, names) or "`corral storage-domain list` shows them"
        raise not_found("storage domain", f"named {name!r}", hint)
    return row


def add_domain(session: Session, domain: StoredDomain) -> None:
    row = StorageDomainRow(
        name=domain.name,
        kind=domain.kind.value,
        settings=domain.settings,
        marker=domain.marker,
        created_at=domain.created_at,
        created_by=domain.created_by,
    )
    with conflict_on_integrity(
        session, lambda: f"a storage domain named {domain.name!r} exists already: choose another"
    ):
        session.add(row)
    for reach in domain.reach.values():
        set_reach(session, domain.name, reach)


def get_domain(session: Session, name: str) -> StoredDomain:
    """NotFound (naming close names) when there is no such domain."""
    return _stored(_row(session, name))


def list_domains(session: Session) -> list[StoredDomain]:
    rows = session.scalars(select(StorageDomainRow).order_by(StorageDomainRow.name))
    return [_stored(r) for r in rows]


def delete_domain(session: Session, name: str) -> None:
    session.delete(_row(session, name))
    session.flush()


def set_reach(session: Session, name: str, reach: StoredReach) -> None:
    """Record one host's reach of domain ``name`` (replacing what was recorded)."""
    domain = _row(session, name)
    host = get_host(session, reach.host)
    row = session.get(StorageDomainHostRow, (domain.id, host.id))
    if row is None:
        row = StorageDomainHostRow(domain_id=domain.id, host_id=host.id)
        session.add(row)
    row.state = reach.state.value
    row.reason = reach.reason
    row.checked_at = reach.checked_at
    row.capacity_bytes = reach.capacity_bytes
    row.free_bytes = reach.free_bytes
    session.flush()


def check_domain_name_free(session: Session, name: str) -> None:
    """Conflict when a domain named ``name`` exists."""
    taken = session.scalars(select(StorageDomainRow.id).where(StorageDomainRow.name == name))
    if taken.first() is not None:
        raise Conflict(f"a storage domain named {name!r} exists already: choose another name")
