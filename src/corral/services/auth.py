"""Users, logins and API tokens."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from corral import store
from corral.errors import AuthenticationRequired, Conflict, DatabaseUnavailable
from corral.model.auth import NewToken, Role, TokenInfo, UserCreate, UserInfo
from corral.services._db import Db
from corral.services.events import Event, EventBus
from corral.services.login_throttle import LoginThrottle
from corral.services.passwords import hash_password, verify_password
from corral.services.principal import Principal

log = logging.getLogger(__name__)

_BAD_LOGIN = "wrong user name or password"


class AuthService:
    def __init__(
        self,
        db: Db,
        bus: EventBus,
        session_policy: store.SessionPolicy,
        login_token_days: int = 30,
    ) -> None:
        self._db = db
        self._bus = bus
        self._throttle = LoginThrottle()
        self.session_policy = session_policy
        #: Lifetime of a login's token when the login names none; 0: never expires. A login
        #: per curl call must not leave a pile of tokens that work forever.
        self._login_token_days = login_token_days

    async def authenticate(self, secret: str) -> Principal:
        # Every request comes here: read without the write lock, and write only when the
        # token's use is due to be recorded (once a minute).
        found = await self._db.read(lambda s: store.authenticate_token(s, secret, record_use=False))
        if found is not None and store.use_due(found[1]):
            read = found
            try:
                found = await self._db(lambda s: store.authenticate_token(s, secret))
            except DatabaseUnavailable as exc:
                # Bookkeeping, not access: a request is not refused because SQLite's write lock
                # stayed busy past its timeout (a burst of adoptions); the next use records it.
                log.info("the use of API token %s is not recorded now: %s", read[1].id, exc.message)
                found = read
        if found is None:
            raise AuthenticationRequired(
                "the API token is unknown, revoked or expired: log in again with `corral login`"
            )
        user, token = found
        return Principal(user=user.name, role=Role(user.role), token_id=token.id)

    async def _check_password(self, username: str, password: str, client: str) -> str:
        """The user's name if the password is right; ``client`` (the caller's address) is what
        failed logins are counted against."""
        throttle = self._throttle

        def _find(session: Session) -> store.User | None:
            throttle.check(session, username, client)
            return store.find_user(session, username)

        user = await self._db(_find)
        # argon2 runs in a thread: it is deliberately slow and must not block the event loop.
        stored = user.password_hash if user is not None else None
        ok = await asyncio.to_thread(verify_password, stored, password)
        if user is None or not ok or user.disabled:
            await self._db(lambda s: throttle.failed(s, username, client))
            raise AuthenticationRequired(_BAD_LOGIN)
        await self._db(lambda s: throttle.succeeded(s, username, client))
        return user.name

    async def login(
        self,
        username: str,
        password: str,
        token_name: str,
        client: str = "local",
        expires_in_days: int | None = None,
    ) -> NewToken:
        name = await self._check_password(username, password, client)
        days = expires_in_days if expires_in_days is not None else self._login_token_days
        return await self.create_token(name, token_name, days or None)

    async def login_session(
        self, username: str, password: str, client: str
    ) -> tuple[store.SessionView, str]:
        """A browser session: its view and the cookie secret."""
        name = await self._check_password(username, password, client)
        policy = self.session_policy
        return await self._db(lambda s: store.create_session(s, name, client, policy))

    async def authenticate_session(
        self, secret: str, *, touch: bool = True
    ) -> tuple[Principal, store.SessionView]:
        """``touch=False``: a background refresh, which does not reset the idle timeout."""
        policy = self.session_policy
        found = await self._db(lambda s: store.authenticate_session(s, secret, policy, touch=touch))
        if found is None:
            raise AuthenticationRequired(
                "your session has ended (logged out, idle or too old): log in again"
            )
        principal = Principal(user=found.user, role=Role(found.role), session_id=found.id)
        return principal, found

    async def current(self, principal: Principal) -> Principal | None:
        """The caller as they stand now — None once their session or token has ended — for
        long-lived streams (consoles, events) that must end with the caller's rights."""
        if principal.session_id is not None:
            session_id, policy = principal.session_id, self.session_policy
            view = await self._db(lambda s: store.live_session(s, session_id, policy))
            if view is None:
                return None
            return Principal(user=view.user, role=Role(view.role), session_id=view.id)
        if principal.token_id is not None:
            token_id = principal.token_id
            found = await self._db(lambda s: store.live_token(s, token_id))
            if found is None:
                return None
            return Principal(user=found[0], role=Role(found[1]), token_id=token_id)
        return principal

    async def logout_session(self, session_id: str) -> None:
        await self._db(lambda s: store.end_session(s, session_id))
        self._bus.publish(Event("session", "ended", {"id": session_id}))

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
        info = await self._db(lambda s: store.revoke_token(s, token_id, owner=owner))
        # Streams opened with the token (consoles, events) end at once, not at their next check.
        self._bus.publish(Event("token", "revoked", {"id": token_id}))
        return info

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
        # The user's open streams (consoles, events), half-open consoles included, end at once.
        self._bus.publish(Event("user", "deleted", {"name": name}))

    def create_user_sync(self, name: str, password: str, role: Role) -> UserInfo:
        return create_user_offline(self._db, name, password, role)


def create_user_offline(db: Db, name: str, password: str, role: Role) -> UserInfo:
    """For ``corral admin init`` (offline, no event loop)."""
    password_hash = hash_password(password)
    return db.sync(lambda s: store.user_info(store.create_user(s, name, password_hash, role)))
