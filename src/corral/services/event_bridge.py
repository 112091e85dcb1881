"""Events across instances on PostgreSQL: the log in the database, ``LISTEN/NOTIFY`` between.

Each event this instance publishes is appended to the ``events`` table (in batches, by one
writer task) and announced with ``NOTIFY``. One listener task per instance receives every
instance's announcements in id order: another instance's events go to every subscriber here,
this instance's own only to logged subscribers (its plain subscribers had them at once: no
echo). After a lost connection the listener catches up from the table. SSE clients that
reconnect, here or elsewhere, are replayed what they missed from the table (``replay``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import psycopg
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from corral.errors import DatabaseUnavailable
from corral.services._background import BackgroundTask
from corral.services._db import Db
from corral.services.events import Event, EventBus
from corral.store.events import (
    CHANNEL,
    LoggedEvent,
    append_events,
    event_bounds,
    events_after,
    prune_events,
)
from corral.store.listen import listen

log = logging.getLogger(__name__)

#: Events the table keeps for instances and clients catching up.
KEPT = 10_000
#: At most this many events per transaction.
BATCH = 200
#: Events waiting for the writer (the database away): past this, the oldest are dropped.
BACKLOG = 10_000
#: A client further behind than this is told to reload rather than replayed.
MAX_REPLAY = 1000
RETRY_S = 1.0
START_TIMEOUT_S = 10.0


class PgEventBridge:
    """Replaces the bus's in-memory log (``start`` before anything publishes matters not:
    events wait in the backlog until the writer runs)."""

    def __init__(self, db: Db, bus: EventBus, origin: str) -> None:
        self._db = db
        self._bus = bus
        #: This instance's id (the events it wrote are not republished to it).
        self.origin = origin
        self._backlog: asyncio.Queue[Event] = asyncio.Queue()
        self._last_seen = 0
        self._writer = BackgroundTask("event-writer", self._write_forever)
        self._listener = BackgroundTask("event-listener", self._listen_forever)
        self._listening = asyncio.Event()
        bus.logger = self._enqueue
        bus.replay = self.replay

    def _enqueue(self, event: Event) -> None:
        if self._backlog.qsize() >= BACKLOG:
            self._backlog.get_nowait()
            log.warning("event log backlog full (database unreachable?): oldest event dropped")
        self._backlog.put_nowait(event)

    async def start(self) -> None:
        """Listen (catching up from the newest event now), then write."""
        self._last_seen = (await self._db(event_bounds))[1]
        self._listener.start()
        async with asyncio.timeout(START_TIMEOUT_S):
            await self._listening.wait()
        self._writer.start()

    async def stop(self) -> None:
        """Write what is waiting (for a few seconds at most), then stop."""
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                await self._backlog.join()
        except TimeoutError:
            log.warning("event log: %d events not written at shutdown", self._backlog.qsize())
        await self._writer.stop()
        await self._listener.stop()

    async def _write_forever(self) -> None:
        batches = 0
        while True:
            batch = [await self._backlog.get()]
            while len(batch) < BATCH and not self._backlog.empty():
                batch.append(self._backlog.get_nowait())
            rows = [(e.topic, e.kind, e.data) for e in batch]
            # Prune now and then: one DELETE per 50 batches keeps the table near KEPT rows.
            await self._write(partial(self._append, rows=rows, prune=batches % 50 == 0))
            batches += 1
            for _ in batch:
                self._backlog.task_done()

    async def _write(self, append: Callable[[Session], None]) -> None:
        """Until it is written: the database being away loses no event (until the backlog's
        bound)."""
        while True:
            try:
                await self._db(append)
                return
            except (SQLAlchemyError, DatabaseUnavailable) as exc:
                log.warning("event log: %s; retrying in %g s", exc, RETRY_S)
                await asyncio.sleep(RETRY_S)

    def _append(
        self, session: Session, *, rows: list[tuple[str, str, dict[str, Any]]], prune: bool
    ) -> None:
        append_events(session, self.origin, rows)
        if prune:
            prune_events(session, KEPT)

    async def _listen_forever(self) -> None:
        while True:
            try:
                async for payload in listen(self._db.store, CHANNEL):
                    if not payload:
                        await self._catch_up()
                        self._listening.set()
                        continue
                    try:
                        notice = json.loads(payload)
                    except ValueError:
                        log.warning("event listener: not an event notice: %.80r", payload)
                        continue
                    await self._notified(notice)
            except (psycopg.Error, SQLAlchemyError, DatabaseUnavailable, OSError) as exc:
                log.warning("event listener lost PostgreSQL (%s); reconnecting", exc)
                await asyncio.sleep(RETRY_S)

    async def _catch_up(self) -> None:
        while True:
            missed = await self._db(partial(events_after, after=self._last_seen, limit=BATCH))
            for event in missed:
                self._deliver(event)
            if len(missed) < BATCH:
                return

    async def _notified(self, notice: dict[str, Any]) -> None:
        event_id = int(notice["id"])
        if event_id <= self._last_seen:
            return
        if "topic" in notice:
            fields = (notice["origin"], notice["topic"], notice["kind"], notice["data"])
            self._deliver(LoggedEvent(event_id, *fields))
            return
        # Too large for a notification: read it (and anything before it not yet seen).
        await self._catch_up()

    def _deliver(self, logged: LoggedEvent) -> None:
        self._last_seen = max(self._last_seen, logged.id)
        event = Event(logged.topic, logged.kind, logged.data, logged.id)
        if logged.origin == self.origin:
            self._bus.logged(event)
        else:
            self._bus.remote(event)

    async def replay(self, after: int) -> list[Event] | None:
        """The events after id ``after``; None when the table no longer holds them all (or
        ``after`` is not an id of this database)."""

        def _read(session: Session) -> list[LoggedEvent] | None:
            oldest, newest = event_bounds(session)
            if not (oldest - 1 <= after <= newest) or newest - after > MAX_REPLAY:
                return None
            return events_after(session, after, MAX_REPLAY)

        found = await self._db(_read)
        if found is None:
            return None
        return [Event(e.topic, e.kind, e.data, e.id) for e in found]
