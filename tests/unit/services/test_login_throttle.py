"""``LoginThrottle`` with a hand-driven clock: per-client limits, the global ceiling, bounds."""

from __future__ import annotations

import pytest

from corral.errors import RateLimited
from corral.services.login_throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_block_that_client_only_for_the_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for _ in range(5):
        throttle.check("admin", "10.0.0.1")
        throttle.failed("admin", "10.0.0.1")
    with pytest.raises(RateLimited, match="wait 60 s"):
        throttle.check("admin", "10.0.0.1")
    throttle.check("admin", "10.0.0.2")  # the real admin, elsewhere
    throttle.check("alice", "10.0.0.1")  # another user name
    clock.now += 60.5
    throttle.check("admin", "10.0.0.1")
    assert len(throttle) == 0  # expired entries are gone


def test_a_success_clears_the_client() -> None:
    throttle = LoginThrottle(clock=Clock())
    for _ in range(4):
        throttle.failed("admin", "10.0.0.1")
    throttle.succeeded("admin", "10.0.0.1")
    for _ in range(4):
        throttle.failed("admin", "10.0.0.1")
    throttle.check("admin", "10.0.0.1")


def test_the_global_ceiling_leaves_clean_clients_alone() -> None:
    clock = Clock()
    throttle = LoginThrottle(global_ceiling=20, clock=clock)
    for bot in range(20):  # many addresses, one failure each
        throttle.failed("admin", f"10.1.0.{bot}")
    with pytest.raises(RateLimited):
        throttle.check("admin", "10.1.0.3")  # one failure is now the limit
    throttle.check("admin", "192.0.2.1")  # never failed: may try
    clock.now += 61
    throttle.check("admin", "10.1.0.3")


def test_a_flood_of_invented_names_keeps_the_table_bounded() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_clients=1000, clock=clock)
    for index in range(50_000):
        throttle.failed(f"user{index}", "10.0.0.1")
        clock.now += 0.0001
    assert len(throttle) == 1000
    # The newest entries are the ones kept.
    with pytest.raises(RateLimited):
        for _ in range(5):
            throttle.failed("user49999", "10.0.0.1")
        throttle.check("user49999", "10.0.0.1")
