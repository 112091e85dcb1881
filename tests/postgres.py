"""The suite's PostgreSQL: a fresh database per test (store tests, several instances)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import make_url
from sqlalchemy.engine import URL

DEFAULT_PG_URL = "postgresql+psycopg://corral:corral-test@127.0.0.1:5432/postgres"

PgAdmin = psycopg.Connection[tuple[object, ...]]


def pg_admin_url() -> URL:
    return make_url(os.environ.get("CORRAL_TEST_POSTGRES_URL", DEFAULT_PG_URL))


def pg_connect(url: URL) -> PgAdmin:
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


def fresh_pg_database(admin: PgAdmin) -> Iterator[str]:
    """The URL of a new empty database, dropped afterwards."""
    name = f"corral_test_{secrets.token_hex(6)}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield pg_admin_url().set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE: a test that failed half-way may have left a connection open.
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
