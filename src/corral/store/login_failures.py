"""Failed logins (user name, client address, when), shared by every instance; bounded."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from corral.store.tables import LoginFailure

#: Longest user name / client kept (what a caller sends is not otherwise bounded here).
_TEXT_LEN = 255


def prune_failures(session: Session, horizon: float) -> None:
    """Forget failures at or before ``horizon`` (epoch s)."""
    session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= horizon))


def client_failures(
    session: Session, username: str, client: str, horizon: float, limit: int
) -> list[float]:
    """The newest ``limit`` failures of ``username`` from ``client`` after ``horizon``,
    newest first."""
    found = (
        select(LoginFailure.failed_at)
        .where(
            LoginFailure.username == username[:_TEXT_LEN],
            LoginFailure.client == client[:_TEXT_LEN],
            LoginFailure.failed_at > horizon,
        )
        .order_by(LoginFailure.failed_at.desc())
        .limit(limit)
    )
    return list(session.scalars(found))


def failures_since(session: Session, horizon: float) -> int:
    """Failures of every user and client after ``horizon``."""
    found = select(func.count()).select_from(LoginFailure).where(LoginFailure.failed_at > horizon)
    return int(session.scalar(found) or 0)


def add_failure(
    session: Session, username: str, client: str, at: float, keep: int, max_rows: int
) -> None:
    """Record a failure; keep only this client's newest ``keep`` and the table's newest
    ``max_rows`` (a flood of invented names forgets the oldest failures, never grows)."""
    username, client = username[:_TEXT_LEN], client[:_TEXT_LEN]
    session.add(LoginFailure(username=username, client=client, failed_at=at))
    session.flush()
    mine = (LoginFailure.username == username) & (LoginFailure.client == client)
    newest = select(LoginFailure.id).where(mine).order_by(LoginFailure.id.desc()).limit(keep)
    session.execute(delete(LoginFailure).where(mine, LoginFailure.id.not_in(newest)))
    top = session.scalar(select(func.max(LoginFailure.id)))
    if top is not None and top > max_rows:
        session.execute(delete(LoginFailure).where(LoginFailure.id <= top - max_rows))


def forget_client(session: Session, username: str, client: str) -> None:
    session.execute(
        delete(LoginFailure).where(
            LoginFailure.username == username[:_TEXT_LEN],
            LoginFailure.client == client[:_TEXT_LEN],
        )
    )
