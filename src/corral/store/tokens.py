"""API tokens: only a hash of each secret is stored; the secret is shown once, at creation."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.model.auth import TokenInfo
from corral.store._integrity import not_found
from corral.store.coltypes import utcnow
from corral.store.tables import ApiToken, User
from corral.store.token_secrets import display_prefix, hash_token, new_token_secret
from corral.store.users import get_user

#: ``last_used_at`` is written at most this often per token: every API request authenticates,
#: and a write per request would serialise all requests on SQLite's single writer.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_info(token: ApiToken) -> TokenInfo:
    return TokenInfo(
        id=token.id,
        name=token.name,
        user=token.user.name,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
        revoked=token.revoked_at is not None,
    )


def create_token(
    session: Session, user_name: str, name: str, *, expires_at: datetime | None = None
) -> tuple[TokenInfo, str]:
    """A new token for ``user_name``: its info and its secret (which is not stored anywhere)."""
    user = get_user(session, user_name)
    secret = new_token_secret()
    token = ApiToken(
        user=user,
        name=name,
        secret_hash=hash_token(secret),
        prefix=display_prefix(secret),
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    return token_info(token), secret


def authenticate_token(
    session: Session, secret: str, *, now: datetime | None = None, record_use: bool = True
) -> tuple[User, ApiToken] | None:
    """The (user, token) that ``secret`` belongs to, or None if it is unknown, revoked, expired
    or its user is disabled. Records the use (at most once a minute) unless not
    ``record_use`` (a session that only reads: see :func:`use_due`).

    Looking up by hash is safe against timing attacks: the compared value is a SHA-256 of the
    caller's input, which they cannot steer towards a stored hash byte by byte.
    """
    now = now or utcnow()
    query = select(ApiToken).where(ApiToken.secret_hash == hash_token(secret))
    token = session.scalars(query).one_or_none()
    if token is None or token.revoked_at is not None or token.user.disabled:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if record_use and use_due(token, now):
        token.last_used_at = now
        session.flush()
    return token.user, token


def use_due(token: ApiToken, now: datetime | None = None) -> bool:
    """Whether ``token``'s use is to be recorded (last recorded a minute ago or more)."""
    last = token.last_used_at
    return last is None or (now or utcnow()) - last >= LAST_USED_RESOLUTION


def get_token(session: Session, token_id: str) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise not_found(
            "API token", f"with id {token_id!r}", "check the id against your list of tokens"
        )
    return token


def revoke_token(
    session: Session, token_id: str, *, owner: str | None = None, now: datetime | None = None
) -> TokenInfo:
    """Revoke a token (idempotent: the first revocation time is kept).

    With ``owner``, only that user's token can be revoked; another user's token is reported as
    not found, so that token ids of other users cannot be probed.
    """
    token = get_token(session, token_id)
    if owner is not None and token.user.name != owner:
        raise not_found(
            "API token", f"with id {token_id!r}", "check the id against your list of tokens"
        )
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()
        session.flush()
    return token_info(token)


def list_tokens(session: Session, user_name: str | None = None) -> list[TokenInfo]:
    """Tokens of one user (or of everyone), oldest first."""
    query = select(ApiToken).join(ApiToken.user).order_by(ApiToken.created_at, ApiToken.id)
    if user_name is not None:
        query = query.where(User.name == user_name)
    return [token_info(t) for t in session.scalars(query)]


def live_token(
    session: Session, token_id: str, *, now: datetime | None = None
) -> tuple[str, str] | None:
    """(user name, role) of a token that still works (not revoked or expired, user enabled),
    else None; without recording a use (long-lived streams ask this)."""
    now = now or utcnow()
    token = session.get(ApiToken, token_id)
    if token is None or token.revoked_at is not None or token.user.disabled:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    return token.user.name, token.user.role
