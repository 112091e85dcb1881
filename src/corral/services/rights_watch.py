"""Long-lived streams (consoles, the event stream) end when their caller's rights end.

A logout ends its session's streams at once (the ``session ended`` event on the bus), and so
do a user's deletion and a token's revocation (``user changed``, ``token revoked``: checked at
once); expiry and changes made outside this process are noticed at the next periodic check.
"""

from __future__ import annotations

import asyncio

from corral.model.auth import Role
from corral.services.auth import AuthService
from corral.services.events import Event, EventBus
from corral.services.principal import Principal

#: How often a stream re-checks its caller's session or token.
CHECK_INTERVAL_S = 5.0


async def until_rights_end(
    auth: AuthService,
    bus: EventBus,
    principal: Principal,
    needed: Role,
    interval_s: float = CHECK_INTERVAL_S,
) -> str:
    """Return (with the reason, for the audit log and the close frame) once ``principal`` may
    no longer hold a stream that needs role ``needed``."""
    async with bus.subscribe() as events:
        while True:
            try:
                async with asyncio.timeout(interval_s):
                    while not (concern := _concerns(await events.get(), principal)):
                        pass
                    if concern == LOGGED_OUT:
                        return concern
            except TimeoutError:
                pass
            current = await auth.current(principal)
            if current is None:
                return "the session or API token has ended (or the user was deleted)"
            if not current.allows(needed):
                return f"user {current.user!r} is now {current.role.value}"


LOGGED_OUT = "the session was logged out"


def _concerns(event: Event, principal: Principal) -> str | None:
    """Why ``event`` may end ``principal``'s rights (None: it does not concern them)."""
    if event.topic == "session" and event.kind == "ended":
        return LOGGED_OUT if event.data.get("id") == principal.session_id else None
    if event.topic == "user" and event.data.get("name") == principal.user:
        return "the user changed"
    if event.topic == "token" and event.data.get("id") == principal.token_id:
        return "the token changed"
    return None
