"""Slow down password guessing without handing anyone a way to lock the real users out.

Failures are counted per (user name, client address): an attacker who fails five times in a
minute is refused (429) for the rest of that minute, while the same user logging in from another
address is not affected. A global ceiling on failures per minute (many attacking addresses at
once) tightens the rule to one failure per client; a client without a recent failure — the
administrator typing the right password — still gets through. Failures live in the database,
so every instance behind a load balancer counts the same ones. The table is bounded: expired
failures are pruned, each client keeps its newest few, and past ``max_failures`` rows the
oldest are forgotten.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from corral.errors import RateLimited
from corral.store.login_failures import (
    add_failure,
    client_failures,
    failures_since,
    forget_client,
    prune_failures,
)

FAILURES_PER_CLIENT = 5
WINDOW_S = 60.0
GLOBAL_CEILING = 100
MAX_FAILURES = 10_000


class LoginThrottle:
    """The rules; each method runs inside the caller's store transaction (``session``).
    ``clock``: epoch seconds, as every instance must agree on it."""

    def __init__(
        self,
        *,
        per_client: int = FAILURES_PER_CLIENT,
        window_s: float = WINDOW_S,
        global_ceiling: int = GLOBAL_CEILING,
        max_failures: int = MAX_FAILURES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._per_client = per_client
        self._window_s = window_s
        self._ceiling = global_ceiling
        self._max_failures = max_failures
        self._clock = clock

    def check(self, session: Session, username: str, client: str) -> None:
        """Raise ``RateLimited`` if this client must wait before trying ``username`` again."""
        now = self._clock()
        horizon = now - self._window_s
        prune_failures(session, horizon)
        recent = client_failures(session, username, client, horizon, self._per_client)
        if not recent:
            return
        ceiling_reached = failures_since(session, horizon) >= self._ceiling
        allowed = 1 if ceiling_reached else self._per_client
        if len(recent) >= allowed:
            wait = self._window_s - (now - recent[allowed - 1])
            raise RateLimited(
                f"too many failed logins for {username!r} from this address; wait "
                f"{max(1, round(wait))} s and try again"
            )

    def failed(self, session: Session, username: str, client: str) -> None:
        add_failure(session, username, client, self._clock(), self._per_client, self._max_failures)

    def succeeded(self, session: Session, username: str, client: str) -> None:
        forget_client(session, username, client)
