"""Browser sessions: like API tokens, only a hash of the cookie's secret is stored."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from corral.store.coltypes import utcnow
from corral.store.tables import User, WebSession
from corral.store.token_secrets import hash_token
from corral.store.users import get_user

#: ``last_seen_at`` is written at most this often: every page and API call authenticates.
LAST_SEEN_RESOLUTION = timedelta(seconds=30)


@dataclass(frozen=True)
class SessionPolicy:
    """How long a session lives: ``idle`` without a request, ``absolute`` in all."""

    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class SessionView:
    """What the web layer needs of a live session (no ORM object leaves the store)."""

    id: str
    user: str
    role: str
    csrf_token: str
    expires_at: datetime


def create_session(
    session: Session, user_name: str, client: str, policy: SessionPolicy | None = None
) -> tuple[SessionView, str]:
    """A new session for ``user_name``; returns it and the cookie secret (not stored). With
    ``policy``, sessions that have ended (logged out, idle, too old) are deleted first: every
    login prunes, so the table holds about the live sessions only."""
    if policy is not None:
        prune_sessions(session, policy)
    user = get_user(session, user_name)
    secret = secrets.token_urlsafe(32)
    row = WebSession(
        user=user,
        secret_hash=hash_token(secret),
        csrf_token=secrets.token_urlsafe(32),
        client=client[:255],
    )
    session.add(row)
    session.flush()
    return _view(row, None), secret


def _expires(row: WebSession, policy: SessionPolicy | None) -> datetime:
    if policy is None:
        return row.created_at
    return min(row.last_seen_at + policy.idle, row.created_at + policy.absolute)


def _view(row: WebSession, policy: SessionPolicy | None) -> SessionView:
    user: User = row.user
    return SessionView(row.id, user.name, user.role, row.csrf_token, _expires(row, policy))


def authenticate_session(
    session: Session,
    secret: str,
    policy: SessionPolicy,
    *,
    now: datetime | None = None,
    touch: bool = True,
) -> SessionView | None:
    """The live session ``secret`` opens, or None if it is unknown, ended, idle too long, too
    old, or its user is disabled. Records the use (at most every 30 s) unless ``touch`` is
    False (a background refresh: the idle timeout counts from the last request of a person)."""
    now = now or utcnow()
    row = session.scalars(
        select(WebSession).where(WebSession.secret_hash == hash_token(secret))
    ).one_or_none()
    if row is None or row.ended_at is not None or row.user.disabled:
        return None
    if now >= row.last_seen_at + policy.idle or now >= row.created_at + policy.absolute:
        row.ended_at = now
        session.flush()
        return None
    if touch and now - row.last_seen_at >= LAST_SEEN_RESOLUTION:
        row.last_seen_at = now
        session.flush()
    return _view(row, policy)


def live_session(
    session: Session, session_id: str, policy: SessionPolicy, *, now: datetime | None = None
) -> SessionView | None:
    """The session if it still stands, without touching it (long-lived streams ask this)."""
    now = now or utcnow()
    row = session.get(WebSession, session_id)
    if row is None or row.ended_at is not None or row.user.disabled:
        return None
    return _view(row, policy) if now < _expires(row, policy) else None


def end_session(session: Session, session_id: str, *, now: datetime | None = None) -> None:
    row = session.get(WebSession, session_id)
    if row is not None and row.ended_at is None:
        row.ended_at = now or utcnow()
        session.flush()


def prune_sessions(session: Session, policy: SessionPolicy, *, now: datetime | None = None) -> None:
    """Delete the sessions no request can open again."""
    now = now or utcnow()
    session.execute(
        delete(WebSession).where(
            WebSession.ended_at.is_not(None)
            | (WebSession.last_seen_at <= now - policy.idle)
            | (WebSession.created_at <= now - policy.absolute)
        )
    )
