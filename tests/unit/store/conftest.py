"""Every store test runs twice: on a fresh SQLite file and on a fresh PostgreSQL database."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, make_url
from sqlalchemy.engine import URL

from corral.store import Store, make_engine, upgrade

DEFAULT_PG_URL = "postgresql+psycopg://corral:corral-test@127.0.0.1:5432/postgres"


def _pg_admin_url() -> URL:
    return make_url(os.environ.get("CORRAL_TEST_POSTGRES_URL", DEFAULT_PG_URL))


def _pg_connect(url: URL) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            dbname=url.database or "postgres",
            autocommit=True,
            connect_timeout=5,
        )
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {url.render_as_string(hide_password=True)} is unreachable: {exc}. "
            "Start it with `bash scripts/setup.sh --test` (starts the cluster and creates role "
            "'corral'), or set CORRAL_TEST_POSTGRES_URL to a server where the role may "
            "CREATE DATABASE.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    conn = _pg_connect(_pg_admin_url())
    yield conn
    conn.close()


def _fresh_pg_database(admin: psycopg.Connection[tuple[object, ...]]) -> Iterator[str]:
    name = f"corral_test_{secrets.token_hex(6)}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _pg_admin_url().set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE: a test that failed half-way may have left a connection open.
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'corral.db'}"
        return
    yield from _fresh_pg_database(request.getfixturevalue("pg_admin"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to head."""
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def store(engine: Engine) -> Store:
    return Store(engine)
