"""Slow down password guessing without handing anyone a way to lock the real users out.

Failures are counted per (user name, client address): an attacker who fails five times in a
minute is refused (429) for the rest of that minute, while the same user logging in from another
address is not affected. A global ceiling on failures per minute (many attacking addresses at
once) tightens the rule to one failure per client; a client without a recent failure — the
administrator typing the right password — still gets through. The table is bounded: expired
entries are pruned, and past ``max_clients`` the least recently failed client is forgotten.
In memory, per manager process.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

from corral.errors import RateLimited

FAILURES_PER_CLIENT = 5
WINDOW_S = 60.0
GLOBAL_CEILING = 100
MAX_CLIENTS = 10_000

Key = tuple[str, str]


class LoginThrottle:
    def __init__(
        self,
        *,
        per_client: int = FAILURES_PER_CLIENT,
        window_s: float = WINDOW_S,
        global_ceiling: int = GLOBAL_CEILING,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_client = per_client
        self._window_s = window_s
        self._ceiling = global_ceiling
        self._max_clients = max_clients
        self._clock = clock
        # key -> failure times, oldest first; ordered by last failure (LRU at the front).
        self._failures: OrderedDict[Key, deque[float]] = OrderedDict()
        self._recent: deque[float] = deque(maxlen=global_ceiling)

    def __len__(self) -> int:
        return len(self._failures)

    def _prune(self, now: float) -> None:
        horizon = now - self._window_s
        while self._failures:
            key, times = next(iter(self._failures.items()))
            if times[-1] > horizon:
                break  # ordered by last failure: everything after is more recent
            del self._failures[key]

    def _ceiling_reached(self, now: float) -> bool:
        return len(self._recent) == self._ceiling and now - self._recent[0] < self._window_s

    def check(self, username: str, client: str) -> None:
        """Raise ``RateLimited`` if this client must wait before trying ``username`` again."""
        now = self._clock()
        self._prune(now)
        times = self._failures.get((username, client))
        if not times:
            return
        recent = [t for t in times if now - t < self._window_s]
        allowed = 1 if self._ceiling_reached(now) else self._per_client
        if len(recent) >= allowed:
            wait = self._window_s - (now - recent[-allowed])
            raise RateLimited(
                f"too many failed logins for {username!r} from this address; wait "
                f"{max(1, round(wait))} s and try again"
            )

    def failed(self, username: str, client: str) -> None:
        now = self._clock()
        key = (username, client)
        times = self._failures.pop(key, None) or deque(maxlen=self._per_client)
        times.append(now)
        self._failures[key] = times  # moved to the most recent end
        self._recent.append(now)
        while len(self._failures) > self._max_clients:
            self._failures.popitem(last=False)

    def succeeded(self, username: str, client: str) -> None:
        self._failures.pop((username, client), None)
