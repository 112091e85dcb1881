"""The API token check on SQLite: a read without the write lock, the use recorded once a minute,
and a request not refused when that bookkeeping finds the write lock busy."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from corral import store
from corral.model.auth import Role
from corral.services._db import Db
from corral.services.auth import AuthService
from corral.services.events import EventBus
from corral.store import db as store_db


async def test_a_token_works_while_another_writer_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_db, "SQLITE_BUSY_TIMEOUT_MS", 200)  # fail fast when it waits
    path = tmp_path / "corral.db"
    database = store.Store.from_url(f"sqlite:///{path}")
    db = Db(database)

    def made(s: Session) -> str:
        store.create_user(s, "ann", "x", Role.ADMIN)
        return store.create_token(s, "ann", "cli")[1]

    secret = db.sync(made)
    auth = AuthService(db, EventBus(), store.SessionPolicy(timedelta(hours=1), timedelta(days=1)))
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another writer, holding the lock throughout
        # First use: its record is due but cannot be written now; the request still passes.
        assert (await auth.authenticate(secret)).user == "ann"
        writer.execute("ROLLBACK")
        assert (await auth.authenticate(secret)).user == "ann"  # recorded now
        [token] = db.sync(lambda s: store.list_tokens(s, "ann"))
        assert token.last_used_at is not None
        writer.execute("BEGIN IMMEDIATE")
        assert (await auth.authenticate(secret)).user == "ann"  # not due: a read only
    finally:
        writer.close()
        database.dispose()
