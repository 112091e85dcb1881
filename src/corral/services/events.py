"""An in-process event bus: services publish, SSE/WebSocket clients and waiters subscribe."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """A Corral event: ``topic`` like ``vm``, ``task``, ``host``; ``data`` is JSON-ready."""

    topic: str
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class EventBus:
    """Fan-out to bounded queues; a slow subscriber loses old events rather than blocking others."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._queues: set[asyncio.Queue[Event]] = set()
        self._queue_size = queue_size

    def publish(self, event: Event) -> None:
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)
