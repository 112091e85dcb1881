"""The event log several instances share (PostgreSQL): appended in id order under a
cluster-wide lock, each event announced with ``NOTIFY``, pruned to the newest rows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from corral.store.db import serialise
from corral.store.tables import EventRow

CHANNEL = "corral_events"
#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more: larger events are named by id.
MAX_PAYLOAD = 7900


@dataclass(frozen=True)
class LoggedEvent:
    id: int
    origin: str
    topic: str
    kind: str
    data: dict[str, Any]


def notice(event: LoggedEvent) -> str:
    """The NOTIFY payload of ``event``: the event itself, or only its id and origin if large."""
    whole = json.dumps(
        {
            "id": event.id,
            "origin": event.origin,
            "topic": event.topic,
            "kind": event.kind,
            "data": event.data,
        },
        separators=(",", ":"),
    )
    if len(whole.encode()) <= MAX_PAYLOAD:
        return whole
    return json.dumps({"id": event.id, "origin": event.origin})


def append_events(
    session: Session, origin: str, events: Sequence[tuple[str, str, dict[str, Any]]]
) -> list[LoggedEvent]:
    """Append (topic, kind, data) events and NOTIFY each. The lock makes ids commit in order,
    so every listener sees them in id order."""
    serialise(session, "events")
    rows = [EventRow(origin=origin, topic=t, kind=k, data=d) for t, k, d in events]
    session.add_all(rows)
    session.flush()
    logged = [LoggedEvent(r.id, r.origin, r.topic, r.kind, r.data) for r in rows]
    for event in logged:
        session.execute(select(func.pg_notify(CHANNEL, notice(event))))
    return logged


def events_after(session: Session, after: int, limit: int) -> list[LoggedEvent]:
    rows = session.scalars(
        select(EventRow).where(EventRow.id > after).order_by(EventRow.id).limit(limit)
    )
    return [LoggedEvent(r.id, r.origin, r.topic, r.kind, r.data) for r in rows]


def event_bounds(session: Session) -> tuple[int, int]:
    """The oldest and newest id kept (0, 0 when empty)."""
    low, high = session.execute(select(func.min(EventRow.id), func.max(EventRow.id))).one()
    return int(low or 0), int(high or 0)


def prune_events(session: Session, keep: int) -> None:
    """Keep the newest ``keep`` ids."""
    newest = session.scalar(select(func.max(EventRow.id)))
    if newest is not None and newest > keep:
        session.execute(delete(EventRow).where(EventRow.id <= newest - keep))
