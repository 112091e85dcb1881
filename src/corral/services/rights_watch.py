"""Long-lived streams (consoles, the event stream) end when their caller's rights end.

A logout ends its session's streams at once (the ``session ended`` event on the bus); expiry,
revoked tokens, disabled users and lowered roles are noticed at the next periodic check.
"""

from __future__ import annotations

import asyncio

from corral.model.auth import Role
from corral.services.auth import AuthService
from corral.services.events import EventBus
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
                    while True:
                        event = await events.get()
                        if (
                            event.topic == "session"
                            and event.kind == "ended"
                            and event.data.get("id") == principal.session_id
                        ):
                            return "the session was logged out"
            except TimeoutError:
                pass
            current = await auth.current(principal)
            if current is None:
                return "the session or API token has ended"
            if not current.allows(needed):
                return f"user {current.user!r} is now {current.role.value}"
