"""Cluster settings an admin changed; the defaults live in ``corral.model.cluster``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.store.coltypes import utcnow
from corral.store.tables import ClusterSetting


def cluster_settings(session: Session) -> dict[str, Any]:
    """Every setting that was set, by key."""
    return {row.key: row.value for row in session.scalars(select(ClusterSetting))}


def set_cluster_setting(session: Session, key: str, value: Any, user: str) -> None:
    row = session.get(ClusterSetting, key)
    if row is None:
        session.add(ClusterSetting(key=key, value=value, updated_by=user, updated_at=utcnow()))
    else:
        row.value, row.updated_by, row.updated_at = value, user, utcnow()
    session.flush()
