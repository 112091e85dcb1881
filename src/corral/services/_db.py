"""Run short store transactions off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from corral.store import Store

T = TypeVar("T")


class Db:
    """``await db(fn)`` runs ``fn(session)`` in one transaction in a worker thread, so a slow
    PostgreSQL round trip never stalls the event loop (and libvirt's events with it)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def sync(self, fn: Callable[[Session], T]) -> T:
        with self.store.session() as session:
            return fn(session)

    async def __call__(self, fn: Callable[[Session], T]) -> T:
        return await asyncio.to_thread(self.sync, fn)

    def read_sync(self, fn: Callable[[Session], T]) -> T:
        with self.store.reading() as session:
            return fn(session)

    async def read(self, fn: Callable[[Session], T]) -> T:
        """``fn(session)`` in a transaction that only reads (``Store.reading``): on SQLite it
        neither waits for nor holds up writers. ``fn`` must not write."""
        return await asyncio.to_thread(self.read_sync, fn)
