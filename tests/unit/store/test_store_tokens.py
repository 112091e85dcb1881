"""API tokens: creation, authentication, expiry, revocation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from corral.errors import NotFound
from corral.model.auth import Role
from corral.services.passwords import hash_token
from corral.store import (
    ApiToken,
    Store,
    authenticate_token,
    create_token,
    create_user,
    list_tokens,
    revoke_token,
    set_disabled,
)
from corral.store.coltypes import utcnow


@pytest.fixture
def users(store: Store) -> Store:
    with store.session() as s:
        create_user(s, "alice", "h", Role.ADMIN)
        create_user(s, "bob", "h", Role.VIEWER)
    return store


def test_valid_token_authenticates_and_only_its_hash_is_stored(users: Store) -> None:
    with users.session() as s:
        info, secret = create_token(s, "alice", "cli")
    assert secret.startswith("crl_") and len(secret) > 40
    assert (info.user, info.name, info.revoked, info.last_used_at) == ("alice", "cli", False, None)
    with users.session() as s:
        found = authenticate_token(s, secret)
        assert found is not None
        user, token = found
        assert (user.name, user.role, token.id) == ("alice", "admin", info.id)
    with users.session() as s:
        row = s.scalars(select(ApiToken)).one()
        assert row.secret_hash == hash_token(secret) and secret not in row.secret_hash
        assert row.prefix == secret[:8]
        assert row.last_used_at is not None


def test_wrong_secret_is_refused(users: Store) -> None:
    with users.session() as s:
        _, secret = create_token(s, "alice", "cli")
        assert authenticate_token(s, secret + "x") is None
        assert authenticate_token(s, "crl_" + "A" * 43) is None
        assert authenticate_token(s, "") is None


def test_revoked_token_is_refused(users: Store) -> None:
    with users.session() as s:
        info, secret = create_token(s, "alice", "cli")
    with users.session() as s:
        revoked = revoke_token(s, info.id)
        assert revoked.revoked
    with users.session() as s:
        assert authenticate_token(s, secret) is None
        first = s.get(ApiToken, info.id)
        assert first is not None
        when = first.revoked_at
        revoke_token(s, info.id)  # idempotent, keeps the first time
        assert first.revoked_at == when


def test_expired_token_is_refused(users: Store) -> None:
    now = utcnow()
    with users.session() as s:
        _, secret = create_token(s, "alice", "cli", expires_at=now + timedelta(hours=1))
    with users.session() as s:
        assert authenticate_token(s, secret, now=now + timedelta(minutes=59)) is not None
        assert authenticate_token(s, secret, now=now + timedelta(hours=1)) is None
        assert authenticate_token(s, secret, now=now + timedelta(days=2)) is None


def test_disabled_users_tokens_are_refused(users: Store) -> None:
    with users.session() as s:
        _, secret = create_token(s, "bob", "cli")
        set_disabled(s, "bob")
    with users.session() as s:
        assert authenticate_token(s, secret) is None


def test_last_used_is_written_at_most_once_a_minute(users: Store) -> None:
    t0 = utcnow()
    with users.session() as s:
        info, secret = create_token(s, "alice", "cli")
    for offset, expected in ((0, 0), (30, 0), (59, 0), (61, 61), (90, 61), (125, 125)):
        with users.session() as s:
            assert authenticate_token(s, secret, now=t0 + timedelta(seconds=offset)) is not None
        with users.session() as s:
            [listed] = [t for t in list_tokens(s) if t.id == info.id]
        assert listed.last_used_at == t0 + timedelta(seconds=expected)


def test_list_by_user_and_all(users: Store) -> None:
    with users.session() as s:
        a1, _ = create_token(s, "alice", "one")
        a2, _ = create_token(s, "alice", "two")
        b1, _ = create_token(s, "bob", "cli")
    with users.session() as s:
        assert [t.id for t in list_tokens(s, "alice")] == [a1.id, a2.id]
        assert [t.id for t in list_tokens(s, "bob")] == [b1.id]
        assert {t.id for t in list_tokens(s)} == {a1.id, a2.id, b1.id}
        assert list_tokens(s, "nobody") == []


def test_revoke_checks_the_owner(users: Store) -> None:
    with users.session() as s:
        info, secret = create_token(s, "alice", "cli")
    with users.session() as s:
        with pytest.raises(NotFound, match="API token"):
            revoke_token(s, info.id, owner="bob")
        with pytest.raises(NotFound):
            revoke_token(s, "0" * 32)
    with users.session() as s:
        assert authenticate_token(s, secret) is not None
        assert revoke_token(s, info.id, owner="alice").revoked


def test_token_for_unknown_user(users: Store) -> None:
    with users.session() as s, pytest.raises(NotFound, match="no user named 'ghost'"):
        create_token(s, "ghost", "cli")
