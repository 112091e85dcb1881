"""Engines, migrations and sessions.

SQLite is the embedded default, PostgreSQL (psycopg 3) the server option. Both go through
:func:`make_engine`, which sets what each backend needs for Corral's many short transactions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.orm import Session, sessionmaker

from corral.errors import InvalidRequest

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Milliseconds a SQLite connection waits for another writer before failing with "locked".
SQLITE_BUSY_TIMEOUT_MS = 5000
#: libpq's options for every PostgreSQL connection (those the URL names win). A new connection
#: waits at most 5 s; an open one to a server gone silent (a network cut with no reset) is
#: found dead within about 25 s, idle (keepalives) or waiting for an answer (unacknowledged
#: data: ``tcp_user_timeout``), not the system's 15 minutes: a request then answers 503 instead
#: of holding its worker thread, and the event listener reconnects.
PG_CONNECT_ARGS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}


def pg_connect_args(url: URL) -> dict[str, int]:
    """:data:`PG_CONNECT_ARGS` but those ``url``'s query sets."""
    return {key: value for key, value in PG_CONNECT_ARGS.items() if key not in url.query}


def _normalise_url(url: str | URL) -> URL:
    parsed = make_url(url)
    # psycopg 3 is the only PostgreSQL driver we ship; plain "postgresql://" would pick psycopg2.
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Driver-level autocommit: pysqlite's implicit BEGIN is replaced by ours (_sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers never block the writer and vice versa.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


#: Execution option of the connections of :meth:`Store.reading` sessions.
READ_ONLY = "corral_read_only"


def _sqlite_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(READ_ONLY):
        # A session that only reads needs no write lock: a deferred BEGIN reads a WAL snapshot
        # while writers go on. query_only makes a write in it fail at once instead of taking
        # the lock a deferred transaction cannot wait for (below).
        conn.exec_driver_sql("PRAGMA query_only=ON")
        conn.exec_driver_sql("BEGIN")
        return
    # BEGIN IMMEDIATE takes the write lock up front. A deferred BEGIN that reads first and writes
    # later cannot wait for the lock (SQLite returns SQLITE_BUSY at once, ignoring busy_timeout,
    # because its snapshot may be stale), which surfaces as "database is locked" under load.
    conn.exec_driver_sql("PRAGMA query_only=OFF")
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | URL) -> Engine:
    """An Engine for ``sqlite:///path`` or ``postgresql+psycopg://…`` (or ``postgresql://``).
    Its errors never quote a statement's parameters (``hide_parameters``): they may be secrets
    (a password's or token's hash), and errors end up in logs."""
    parsed = _normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            # Each pooled connection would get its own empty database (threads, to_thread…).
            raise InvalidRequest(
                "in-memory SQLite is not supported: use a file, e.g. sqlite:////var/lib/corral/db"
            )
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # pre_ping: a PostgreSQL restart must not hand stale connections to the next request.
    engine = create_engine(
        parsed, pool_pre_ping=True, connect_args=pg_connect_args(parsed), hide_parameters=True
    )
    event.listen(engine, "begin", _postgresql_begin)
    return engine


def _postgresql_begin(conn: Connection) -> None:
    # The same contract as on SQLite: a write in a session that said it only reads fails.
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")


def alembic_config() -> Config:
    """Alembic's Config built in code: no alembic.ini is needed at run time."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine_or_url: Engine | str | URL, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision`` (default: the newest)."""
    if isinstance(engine_or_url, Engine):
        _upgrade(engine_or_url, revision)
        return
    engine = make_engine(engine_or_url)
    try:
        _upgrade(engine, revision)
    finally:
        engine.dispose()


def _upgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


class Store:
    """The database: an engine and a session factory.

    Sessions do not expire objects on commit, so ORM objects returned from a finished
    ``with store.session()`` block stay readable (they are plain snapshots from then on).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._readers = sessionmaker(
            engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )

    @classmethod
    def from_url(cls, url: str | URL, *, migrate: bool = True) -> Store:
        """Open (and by default migrate to head) the database at ``url``."""
        engine = make_engine(url)
        if migrate:
            upgrade(engine)
        return cls(engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A transaction that only reads: on SQLite it takes no write lock (so it neither waits
        for writers nor makes them wait) and any write in it fails. Its reads see one snapshot,
        which may be older than a write that commits meanwhile: for lists and checks that
        re-read (or write under ``session``) before acting on what they saw."""
        with self._readers() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def serialise(session: Session, name: str) -> None:
    """Hold a cluster-wide lock named ``name`` until ``session``'s transaction ends, so that
    a check-then-write (a cap, an ordered append) is not raced by another instance. PostgreSQL:
    a transaction-level advisory lock; SQLite: ``BEGIN IMMEDIATE`` already serialises writers."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
