"""Browser sessions are pruned at each login: only sessions a request could still open stay."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from corral.model.auth import Role
from corral.store import Store, create_user
from corral.store.coltypes import utcnow
from corral.store.tables import WebSession
from corral.store.web_sessions import SessionPolicy, create_session, end_session

POLICY = SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=12))


def test_a_login_prunes_ended_idle_and_old_sessions(store: Store) -> None:
    with store.session() as s:
        create_user(s, "eve", "x", Role.VIEWER)
        ids = [create_session(s, "eve", "10.0.0.1")[0].id for _ in range(4)]
        end_session(s, ids[0])
        s.get_one(WebSession, ids[1]).last_seen_at = utcnow() - timedelta(minutes=31)
        s.get_one(WebSession, ids[2]).created_at = utcnow() - timedelta(hours=13)
    with store.session() as s:
        new = create_session(s, "eve", "10.0.0.1", POLICY)[0].id
    with store.session() as s:
        assert set(s.scalars(select(WebSession.id))) == {ids[3], new}
