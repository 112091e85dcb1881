"""The event bus: services publish, SSE/WebSocket clients and waiters subscribe.

Two kinds of subscribers. Plain ones (``subscribe()``: waiters, rights watches) get every event
of this process at once, and with several instances every other instance's events too. Logged
ones (``subscribe(logged=True)``: SSE streams) get events once they have an id in the event
log, in id order, so that a client reconnecting with ``Last-Event-ID`` can be given what it
missed (``replay``). One instance (SQLite): the log is a ring in memory. Several instances
(PostgreSQL): ``event_bridge.PgEventBridge`` keeps it in the database and carries events
between instances with ``LISTEN/NOTIFY``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

#: Events the in-memory log keeps for clients that reconnect.
RING_SIZE = 2000


@dataclass(frozen=True)
class Event:
    """A Corral event: ``topic`` like ``vm``, ``task``, ``host``; ``data`` is JSON-ready;
    ``id`` once the event log has it (what an SSE client names in ``Last-Event-ID``)."""

    topic: str
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


#: Give an event to the log (which calls ``EventBus.logged`` once the event has its id).
Logger = Callable[[Event], None]
#: The logged events after an id, or None when the log no longer holds them all.
Replayer = Callable[[int], Awaitable[list[Event] | None]]


class RingLog:
    """One instance's event log, in memory: ids start at the start time in microseconds, so
    an id from before a restart is older than anything kept (the client is told to reload)."""

    def __init__(self, bus: EventBus, size: int = RING_SIZE) -> None:
        self._bus = bus
        self._next = int(time.time() * 1_000_000)
        self._kept: deque[Event] = deque(maxlen=size)

    def append(self, event: Event) -> None:
        logged = dataclasses.replace(event, id=self._next)
        self._next += 1
        self._kept.append(logged)
        self._bus.logged(logged)

    async def replay(self, after: int) -> list[Event] | None:
        newest = self._next - 1
        oldest = self._kept[0].id if self._kept else self._next
        assert oldest is not None
        if not oldest - 1 <= after <= newest:
            return None
        return [e for e in self._kept if e.id is not None and e.id > after]


class EventBus:
    """Fan-out to bounded queues; a slow subscriber loses old events rather than blocking others."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queues: set[asyncio.Queue[Event]] = set()
        self._logged: set[asyncio.Queue[Event]] = set()
        self._queue_size = queue_size
        ring = RingLog(self)
        self.logger: Logger = ring.append
        self.replay: Replayer = ring.replay

    @staticmethod
    def _deliver(queues: set[asyncio.Queue[Event]], event: Event) -> None:
        for queue in queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    def publish(self, event: Event) -> None:
        """An event of this instance: to plain subscribers now, to the log for the rest."""
        self._deliver(self._queues, event)
        self.logger(event)

    def logged(self, event: Event) -> None:
        """An event of this instance, now with its id: to logged subscribers."""
        self._deliver(self._logged, event)

    def remote(self, event: Event) -> None:
        """Another instance's event (with its id): to every subscriber."""
        self._deliver(self._queues, event)
        self._deliver(self._logged, event)

    @asynccontextmanager
    async def subscribe(self, *, logged: bool = False) -> AsyncIterator[asyncio.Queue[Event]]:
        queues = self._logged if logged else self._queues
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        queues.add(queue)
        try:
            yield queue
        finally:
            queues.discard(queue)
