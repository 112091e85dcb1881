"""The audit log: who did what to which object, when, and how it ended."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.errors import InvalidRequest
from corral.model.auth import AuditEntry as AuditEntryInfo
from corral.store.coltypes import utcnow
from corral.store.tables import AuditEntry

_OUTCOME = re.compile(r"^(ok|denied|error: .+)$", re.DOTALL)


def audit_info(entry: AuditEntry) -> AuditEntryInfo:
    return AuditEntryInfo(
        id=entry.id,
        at=entry.at,
        user=entry.user,
        action=entry.action,
        target=entry.target,
        outcome=entry.outcome,
        detail=entry.detail,
    )


def _fit(text: str, limit: int) -> str:
    # An audit write must never fail because a VM name or an error message is long.
    return text if len(text) <= limit else text[: limit - 1] + "…"


def append_audit(
    session: Session,
    *,
    user: str,
    action: str,
    target: str,
    outcome: str,
    detail: str = "",
    at: datetime | None = None,
) -> AuditEntryInfo:
    """Record one entry. ``outcome`` is ``"ok"``, ``"denied"`` or ``"error: <message>"``."""
    if not _OUTCOME.match(outcome):
        raise InvalidRequest(f"audit outcome must be 'ok', 'denied' or 'error: …', not {outcome!r}")
    entry = AuditEntry(
        at=at or utcnow(),
        user=_fit(user, 63),
        action=_fit(action, 64),
        target=_fit(target, 255),
        outcome=_fit(outcome, 1024),
        detail=detail,
    )
    session.add(entry)
    session.flush()
    return audit_info(entry)


def list_audit(
    session: Session,
    limit: int = 100,
    user: str | None = None,
    action: str | None = None,
    *,
    before_id: int | None = None,
) -> list[AuditEntryInfo]:
    """Newest first (by insertion order, which is time order); with ``before_id`` only older
    entries: the next page."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if user is not None:
        query = query.where(AuditEntry.user == user)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return [audit_info(e) for e in session.scalars(query)]
