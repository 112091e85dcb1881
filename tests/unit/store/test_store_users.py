"""Users and the cascade of their tokens."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from corral.errors import Conflict, NotFound
from corral.model.auth import Role
from corral.store import (
    ApiToken,
    Store,
    count_admins,
    create_token,
    create_user,
    delete_user,
    find_user,
    get_user,
    list_users,
    set_disabled,
    set_password,
    set_role,
    user_info,
)


def test_create_get_list(store: Store) -> None:
    with store.session() as s:
        create_user(s, "bob", "hash-b", Role.OPERATOR)
        create_user(s, "alice", "hash-a", Role.ADMIN)
    with store.session() as s:
        alice = get_user(s, "alice")
        names = [u.name for u in list_users(s)]
    assert names == ["alice", "bob"]
    info = user_info(alice)
    assert (info.name, info.role, info.disabled) == ("alice", Role.ADMIN, False)
    assert alice.password_hash == "hash-a"


def test_duplicate_name_is_a_conflict_and_the_session_survives(store: Store) -> None:
    with store.session() as s:
        create_user(s, "alice", "h", Role.ADMIN)
    with store.session() as s:
        with pytest.raises(Conflict, match="user named 'alice' already exists"):
            create_user(s, "alice", "other", Role.VIEWER)
        # The failed insert was rolled back to a savepoint: the transaction goes on.
        create_user(s, "carol", "h", Role.VIEWER)
    with store.session() as s:
        assert [u.name for u in list_users(s)] == ["alice", "carol"]
        assert get_user(s, "alice").role == Role.ADMIN.value


def test_unknown_user(store: Store) -> None:
    with store.session() as s:
        assert find_user(s, "ghost") is None
        with pytest.raises(NotFound, match="no user named 'ghost'"):
            get_user(s, "ghost")
        with pytest.raises(NotFound):
            delete_user(s, "ghost")


def test_set_password_disable_and_role(store: Store) -> None:
    with store.session() as s:
        create_user(s, "alice", "old", Role.ADMIN)
        create_user(s, "bob", "h", Role.ADMIN)
        assert count_admins(s) == 2
    with store.session() as s:
        set_password(s, "alice", "new")
        set_disabled(s, "bob")
        assert count_admins(s) == 1
        set_role(s, "alice", Role.VIEWER)
        assert count_admins(s) == 0
    with store.session() as s:
        assert get_user(s, "alice").password_hash == "new"
        assert get_user(s, "alice").role == "viewer"
        assert get_user(s, "bob").disabled is True
        set_disabled(s, "bob", False)
    with store.session() as s:
        assert get_user(s, "bob").disabled is False


def test_deleting_a_user_deletes_their_tokens(store: Store) -> None:
    with store.session() as s:
        create_user(s, "alice", "h", Role.ADMIN)
        create_user(s, "bob", "h", Role.VIEWER)
        create_token(s, "alice", "cli")
        create_token(s, "alice", "ci")
        create_token(s, "bob", "cli")
    with store.session() as s:
        delete_user(s, "alice")
    with store.session() as s:
        owners = list(s.scalars(select(ApiToken.user_id)))
        assert len(owners) == 1
        assert owners == [get_user(s, "bob").id]
        assert s.scalar(select(func.count()).select_from(ApiToken)) == 1
