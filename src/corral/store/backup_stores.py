"""Backup stores in the database: where each one is, and its sealed key."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.model.common import did_you_mean
from corral.store._integrity import conflict_on_integrity, not_found
from corral.store.tables import BackupStoreRow


def add_backup_store(
    session: Session, *, name: str, path: str, key_sealed: str | None, created_by: str
) -> BackupStoreRow:
    row = BackupStoreRow(name=name, path=path, key_sealed=key_sealed, created_by=created_by)
    with conflict_on_integrity(
        session,
        lambda: f"a backup store named {name!r} or at {path} already exists; choose another",
    ):
        session.add(row)
    return row


def find_backup_store(session: Session, name: str) -> BackupStoreRow | None:
    return session.get(BackupStoreRow, name)


def get_backup_store(session: Session, name: str) -> BackupStoreRow:
    row = find_backup_store(session, name)
    if row is None:
        known = session.scalars(select(BackupStoreRow.name)).all()
        hint = did_you_mean(name, known) or "`corral backup store list` shows them"
        raise not_found("backup store", f"named {name!r}", hint)
    return row


def list_backup_stores(session: Session) -> list[BackupStoreRow]:
    return list(session.scalars(select(BackupStoreRow).order_by(BackupStoreRow.name)))


def delete_backup_store(session: Session, name: str) -> None:
    session.delete(get_backup_store(session, name))
    session.flush()
