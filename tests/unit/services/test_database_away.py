"""A database that is away is one error, ``DatabaseUnavailable``, with a sentence saying which
(on real engines: a PostgreSQL port nobody listens on, a read-only SQLite file, a SQLite file
another connection holds locked); other database errors stay what they are."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from corral.errors import DatabaseUnavailable
from corral.services._db import Db
from corral.store import Store
from corral.store.db import make_engine
from corral.testbed.corral_server import free_port
from tests.postgres import PgAdmin, pg_admin_url
from tests.tcp_forwarder import forwarding


def _write(session: Session) -> None:
    session.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER PRIMARY KEY)"))
    session.execute(text("INSERT INTO t VALUES (1)"))


SECRET = "a-parameter-that-is-a-secret"


def _write_secret(session: Session) -> None:
    session.execute(text("CREATE TABLE IF NOT EXISTS s (x TEXT PRIMARY KEY)"))
    for _ in range(2):
        session.execute(text("INSERT INTO s VALUES (:x)"), {"x": SECRET})


async def test_postgresql_nobody_answers_is_unreachable_and_unhealthy() -> None:
    url = f"postgresql://corral:the-secret@127.0.0.1:{free_port()}/corral"
    db = Db(Store(make_engine(url)))
    try:
        with pytest.raises(DatabaseUnavailable) as raised:
            await db(_write)
        assert "database is unreachable" in raised.value.message
        assert "the-secret" not in raised.value.message and "127.0.0.1" not in raised.value.message
        assert raised.value.__cause__ is None and raised.value.__suppress_context__
        assert await db.health() == raised.value.message
    finally:
        db.store.dispose()


async def test_sqlite_read_only_and_locked_say_so(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    db = Db(Store(make_engine(f"sqlite:///{path}")))
    read_only = Db(Store(create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")))
    try:
        await db(_write)
        with pytest.raises(DatabaseUnavailable, match="database is read-only"):
            await read_only(_write)
        # Another writer holds the lock past the busy timeout (shortened here: 5 s by default).
        event.listen(db.store.engine, "connect", lambda c, _r: c.execute("PRAGMA busy_timeout=50"))
        db.store.dispose()
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(DatabaseUnavailable, match="database is busy"):
                await db(_write)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        with pytest.raises(IntegrityError) as conflict:  # not an outage: the caller's conflict
            await db(_write_secret)
        assert SECRET not in str(conflict.value)  # errors end up in logs
        assert await db.health() is None
    finally:
        db.store.dispose()
        read_only.store.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize(("query", "connect_timeout"), [("", "5"), ("?connect_timeout=2", "2")])
def test_postgresql_connections_find_a_silent_server_dead(
    pg_admin: PgAdmin, query: str, connect_timeout: str
) -> None:
    """Keepalives and ``tcp_user_timeout`` on every connection (a network cut that sends no
    reset is noticed in seconds, not the system's 15 minutes); what the URL says wins."""
    url = pg_admin_url().render_as_string(hide_password=False) + query
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            driver = connection.connection.dbapi_connection
            assert isinstance(driver, psycopg.Connection)
            used = driver.info.get_parameters()
    finally:
        engine.dispose()
    assert used["connect_timeout"] == connect_timeout
    assert (used["keepalives"], used["keepalives_idle"], used["tcp_user_timeout"]) == (
        "1",
        "10",
        "15000",
    )


@pytest.mark.postgres
async def test_a_silent_postgresql_fails_in_bounded_time() -> None:
    """A server that accepts and then says nothing (a network cut): a transaction fails after
    the 5 s connect timeout, ``/healthz``'s check after its 3 s, not after minutes."""
    admin = pg_admin_url()
    with forwarding(admin.host or "127.0.0.1", admin.port or 5432) as forwarder:
        forwarder.silence()
        db = Db(Store(make_engine(admin.set(host="127.0.0.1", port=forwarder.port))))
        try:
            started = time.monotonic()
            health, work = await asyncio.gather(db.health(), db(_write), return_exceptions=True)
            took = time.monotonic() - started
        finally:
            db.store.dispose()
    assert health == "the database did not answer within 3 s"
    assert isinstance(work, DatabaseUnavailable) and "unreachable" in work.message
    assert took < 10, took
