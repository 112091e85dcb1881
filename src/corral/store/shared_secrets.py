"""The fingerprints of the secrets every instance must share (see ``pki/shared.py``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.store.db import serialise
from corral.store.tables import SharedSecret


def record_fingerprints(
    session: Session, mine: dict[str, str], instance: str, *, replace: bool = False
) -> dict[str, tuple[str, str]]:
    """Record ``mine`` (name → fingerprint) where the cluster has none yet (every one with
    ``replace``); the names whose recorded fingerprint differs, with who recorded it when."""
    serialise(session, "shared_secrets")
    recorded = {row.name: row for row in session.scalars(select(SharedSecret))}
    differ: dict[str, tuple[str, str]] = {}
    for name, fingerprint in mine.items():
        row = recorded.get(name)
        if row is None:
            session.add(SharedSecret(name=name, fingerprint=fingerprint, recorded_by=instance))
        elif row.fingerprint != fingerprint:
            if replace:
                row.fingerprint, row.recorded_by = fingerprint, instance
            else:
                differ[name] = (row.recorded_by, row.recorded_at.isoformat(timespec="seconds"))
    session.flush()
    return differ


def recorded_names(session: Session) -> set[str]:
    """The names of the secrets the cluster has recorded."""
    return set(session.scalars(select(SharedSecret.name)))
