"""Users, logins and API tokens."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from corral import store
from corral.errors import AuthenticationRequired, Conflict, RateLimited
from corral.model.auth import NewToken, Role, TokenInfo, UserCreate, UserInfo
from corral.services._db import Db
from corral.services.passwords import hash_password, verify_password
from corral.services.principal import Principal

_BAD_LOGIN = "wrong user name or password"
_FAILURES_ALLOWED = 5
_FAILURE_WINDOW_S = 60.0


class LoginThrottle:
    """At most a few failed logins per user name per minute: slows password guessing without
    locking the real user out for long. In memory, per manager process."""

    def __init__(self) -> None:
        self._failures: dict[str, list[float]] = {}

    def check(self, username: str) -> None:
        now = time.monotonic()
        recent = [t for t in self._failures.get(username, []) if now - t < _FAILURE_WINDOW_S]
        self._failures[username] = recent
        if len(recent) >= _FAILURES_ALLOWED:
            wait = _FAILURE_WINDOW_S - (now - recent[0])
            raise RateLimited(
                f"too many failed logins for {username!r}; wait {wait:.0f} s and try again"
            )

    def failed(self, username: str) -> None:
        self._failures.setdefault(username, []).append(time.monotonic())

    def succeeded(self, username: str) -> None:
        self._failures.pop(username, None)


class AuthService:
    def __init__(self, db: Db) -> None:
        self._db = db
        self._throttle = LoginThrottle()

    async def authenticate(self, secret: str) -> Principal:
        found = await self._db(lambda s: store.authenticate_token(s, secret))
        if found is None:
            raise AuthenticationRequired(
                "the API token is unknown, revoked or expired: log in again with `corral login`"
            )
        user, token = found
        return Principal(user=user.name, role=Role(user.role), token_id=token.id)

    async def login(self, username: str, password: str, token_name: str) -> NewToken:
        self._throttle.check(username)
        user = await self._db(lambda s: store.find_user(s, username))
        # argon2 runs in a thread: it is deliberately slow and must not block the event loop.
        stored = user.password_hash if user is not None else None
        ok = await asyncio.to_thread(verify_password, stored, password)
        if user is None or not ok or user.disabled:
            self._throttle.failed(username)
            raise AuthenticationRequired(_BAD_LOGIN)
        self._throttle.succeeded(username)
        return await self.create_token(user.name, token_name, None)

    async def create_token(self, user: str, name: str, expires_in_days: int | None) -> NewToken:
        expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
        info, secret = await self._db(
            lambda s: store.create_token(s, user, name, expires_at=expires)
        )
        return NewToken(**info.model_dump(), secret=secret)

    async def list_tokens(self, principal: Principal) -> list[TokenInfo]:
        owner = None if principal.allows(Role.ADMIN) else principal.user
        return await self._db(lambda s: store.list_tokens(s, owner))

    async def revoke_token(self, principal: Principal, token_id: str) -> TokenInfo:
        owner = None if principal.allows(Role.ADMIN) else principal.user
        return await self._db(lambda s: store.revoke_token(s, token_id, owner=owner))

    async def whoami(self, principal: Principal) -> UserInfo:
        return await self._db(lambda s: store.user_info(store.get_user(s, principal.user)))

    async def list_users(self) -> list[UserInfo]:
        return await self._db(lambda s: [store.user_info(u) for u in store.list_users(s)])

    async def create_user(self, request: UserCreate) -> UserInfo:
        password_hash = await asyncio.to_thread(hash_password, request.password)
        return await self._db(
            lambda s: store.user_info(
                store.create_user(s, request.name, password_hash, request.role)
            )
        )

    async def delete_user(self, principal: Principal, name: str) -> None:
        if name == principal.user:
            # A state of the caller, not a malformed request: the same call from another admin
            # would do.
            raise Conflict("you cannot delete your own user; ask another admin")

        def _delete(session: Session) -> None:
            user = store.get_user(session, name)
            if user.role == Role.ADMIN.value and store.count_admins(session) <= 1:
                raise Conflict(f"{name!r} is the last admin; create another admin first")
            store.delete_user(session, name)

        await self._db(_delete)

    def create_user_sync(self, name: str, password: str, role: Role) -> UserInfo:
        """For ``corral admin init`` (offline, no event loop)."""
        password_hash = hash_password(password)
        return self._db.sync(
            lambda s: store.user_info(store.create_user(s, name, password_hash, role))
        )
