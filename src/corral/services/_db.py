"""Run short store transactions off the event loop; a database that is away is one error.

A transaction that fails because the database cannot be reached or used (PostgreSQL down or
its connection cut, SQLite locked for longer than its busy timeout or read-only) raises
:class:`DatabaseUnavailable` with a sentence saying which, never the driver's message: that
may quote the statement, its parameters or the server's address. The API answers it with 503
and ``Retry-After``; background loops log it and try again at their next tick.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from corral.errors import DatabaseUnavailable
from corral.metrics import DATABASE_UNAVAILABLE
from corral.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds the API tells a client to wait (``Retry-After``) when the database is away.
RETRY_AFTER_S = 5
#: How long ``/healthz`` waits for the database's answer.
HEALTH_TIMEOUT_S = 3.0
#: While the database stays away, the log repeats that it is at most this often.
_SAY_AGAIN_S = 60.0

UNREACHABLE = "the database is unreachable: Corral cannot reach PostgreSQL; try again shortly"
READ_ONLY = "the database is read-only: Corral cannot write its SQLite file"
POOL_EXHAUSTED = "the database is busy: every connection to it is in use; try again shortly"
#: SQLite's messages (``sqlite3.OperationalError``) and what they mean to a caller.
_SQLITE = (
    ("locked", "the database is busy: its SQLite file stayed locked by another writer; try again"),
    ("readonly", READ_ONLY),
    ("read-only", READ_ONLY),
    ("unable to open", "the database cannot be opened: Corral cannot open its SQLite file"),
    ("disk i/o error", "the database cannot be used: reading or writing its SQLite file failed"),
    ("disk is full", "the database cannot be written: the disk of its SQLite file is full"),
)
#: PostgreSQL error classes that mean the server or the connection is gone, not the query
#: (08: connection exception; 57P01-03: the server is shutting down or starting).
_PG_GONE = ("08", "57P01", "57P02", "57P03")


def unavailable_reason(error: BaseException) -> str | None:
    """The sentence for a database error that means "the database is away", else None (a
    constraint, a deadlock, a bug: those stay what they are). Takes SQLAlchemy's errors and
    the drivers' own (a raw connection's)."""
    if isinstance(error, sa_exc.TimeoutError):
        return POOL_EXHAUSTED
    orig: BaseException | None = error
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return UNREACHABLE
        orig = error.orig
    if isinstance(orig, sqlite3.OperationalError):
        text = str(orig).lower()
        return next((reason for key, reason in _SQLITE if key in text), None)
    if isinstance(orig, psycopg.InterfaceError):
        return UNREACHABLE  # "the connection is closed"
    if isinstance(orig, psycopg.OperationalError):
        sqlstate = orig.sqlstate
        if sqlstate is None or sqlstate.startswith(_PG_GONE):
            return UNREACHABLE
    return None


def _driver_message(error: BaseException) -> str:
    # The driver's own words (for the log), without SQLAlchemy's statement and parameters.
    orig = getattr(error, "orig", None) or error
    return " ".join(str(orig).split())[:300]


class Db:
    """``await db(fn)`` runs ``fn(session)`` in one transaction in a worker thread, so a slow
    PostgreSQL round trip never stalls the event loop (and libvirt's events with it)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._checking: asyncio.Task[str | None] | None = None
        #: When the database went away (monotonic), None while it answers; the log says so
        #: once per outage (and once a minute), not once per failed transaction.
        self._away_since: float | None = None
        self._last_said = 0.0

    def sync(self, fn: Callable[[Session], T]) -> T:
        return self._transaction(self.store.session, fn)

    async def __call__(self, fn: Callable[[Session], T]) -> T:
        return await asyncio.to_thread(self.sync, fn)

    def read_sync(self, fn: Callable[[Session], T]) -> T:
        return self._transaction(self.store.reading, fn, reading=True)

    async def read(self, fn: Callable[[Session], T]) -> T:
        """``fn(session)`` in a transaction that only reads (``Store.reading``): on SQLite it
        neither waits for nor holds up writers. ``fn`` must not write."""
        return await asyncio.to_thread(self.read_sync, fn)

    def _transaction(
        self,
        opener: Callable[[], AbstractContextManager[Session]],
        fn: Callable[[Session], T],
        *,
        reading: bool = False,
    ) -> T:
        try:
            with opener() as session:
                result = fn(session)
        except sa_exc.SQLAlchemyError as exc:
            reason = unavailable_reason(exc)
            if reason is None or (reading and reason == READ_ONLY):
                raise  # a write in a reading transaction is a bug, not a read-only file
            self._away(reason, exc)
            DATABASE_UNAVAILABLE.inc()
            raise DatabaseUnavailable(reason) from None
        if self._away_since is not None:
            self._back()
        return result

    def _away(self, reason: str, exc: BaseException) -> None:
        now = time.monotonic()
        if self._away_since is None:
            self._away_since = now
        elif now - self._last_said < _SAY_AGAIN_S:
            return
        self._last_said = now
        log.warning("%s (%s)", reason, _driver_message(exc))

    def _back(self) -> None:
        since, self._away_since = self._away_since, None
        if since is not None:
            log.warning("the database answers again, after %.1f s", time.monotonic() - since)

    def _ping(self) -> None:
        # A raw connection, no transaction: on SQLite not even a read waits for a writer.
        connection = self.store.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute("SELECT 1")
                cursor.fetchall()
            finally:
                cursor.close()
        finally:
            connection.close()

    async def health(self) -> str | None:
        """None when the database answers a trivial query in time, else why not. Callers at
        the same moment share one check: with the database silent, each would hold a worker
        thread (which every transaction needs) until its connect timeout."""
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._check(), name="database-health")
        return await asyncio.shield(self._checking)

    async def _check(self) -> str | None:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                await asyncio.to_thread(self._ping)
        except TimeoutError:
            return f"the database did not answer within {HEALTH_TIMEOUT_S:g} s"
        except (sa_exc.SQLAlchemyError, sqlite3.Error, psycopg.Error) as exc:
            reason = unavailable_reason(exc)
            if reason is None:
                log.warning("health check: %s", _driver_message(exc))
                return "the database failed a trivial query"
            self._away(reason, exc)
            return reason
        return None
