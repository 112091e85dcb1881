"""Users. The store keeps password *hashes*; hashing is ``corral.services.passwords``' job."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from corral.model.auth import Role, UserInfo
from corral.store._integrity import conflict_on_integrity, not_found
from corral.store.tables import User


def user_info(user: User) -> UserInfo:
    return UserInfo(
        name=user.name, role=Role(user.role), created_at=user.created_at, disabled=user.disabled
    )


def create_user(session: Session, name: str, password_hash: str, role: Role) -> User:
    """Add a user; Conflict if the name is taken."""
    user = User(name=name, password_hash=password_hash, role=Role(role).value, disabled=False)
    with conflict_on_integrity(
        session, lambda: f"a user named {name!r} already exists; choose another name"
    ):
        session.add(user)
    return user


def find_user(session: Session, name: str) -> User | None:
    """The user called ``name``, or None (for login, where 'no such user' must not leak)."""
    return session.scalars(select(User).where(User.name == name)).one_or_none()


def get_user(session: Session, name: str) -> User:
    user = find_user(session, name)
    if user is None:
        raise not_found("user", f"named {name!r}", "check the name against the list of users")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def delete_user(session: Session, name: str) -> None:
    """Delete a user and (by ON DELETE CASCADE) all their API tokens."""
    session.delete(get_user(session, name))
    session.flush()


def set_password(session: Session, name: str, password_hash: str) -> None:
    get_user(session, name).password_hash = password_hash
    session.flush()


def set_disabled(session: Session, name: str, disabled: bool = True) -> User:
    """Disable (or re-enable) a user. Disabled users' tokens stop authenticating."""
    user = get_user(session, name)
    user.disabled = disabled
    session.flush()
    return user


def set_role(session: Session, name: str, role: Role) -> User:
    user = get_user(session, name)
    user.role = Role(role).value
    session.flush()
    return user


def count_admins(session: Session) -> int:
    """Enabled admins: services refuse to delete, disable or demote the last one."""
    query = select(func.count()).where(User.role == Role.ADMIN.value, User.disabled.is_(False))
    return int(session.scalar(query) or 0)
