"""``LoginThrottle`` with a hand-driven clock on both backends: per-client limits, the global
ceiling, bounds — and, through two stores on one database, failures counted by every instance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from corral.errors import RateLimited
from corral.services.login_throttle import LoginThrottle
from corral.store import Store
from corral.store.tables import LoginFailure


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """Two stores on one database: what two instances hold."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'corral.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    first, second = Store.from_url(url), Store.from_url(url, migrate=False)
    yield first, second
    first.dispose()
    second.dispose()


class Instance:
    """One instance's throttle on its store: each call is its own transaction."""

    def __init__(self, store: Store, throttle: LoginThrottle) -> None:
        self.store, self.throttle = store, throttle

    def check(self, user: str, client: str) -> None:
        with self.store.session() as session:
            self.throttle.check(session, user, client)

    def failed(self, user: str, client: str) -> None:
        with self.store.session() as session:
            self.throttle.failed(session, user, client)

    def succeeded(self, user: str, client: str) -> None:
        with self.store.session() as session:
            self.throttle.succeeded(session, user, client)

    def rows(self) -> int:
        with self.store.session() as session:
            return int(session.scalar(select(func.count()).select_from(LoginFailure)) or 0)


def test_five_failures_on_any_instance_block_that_client_only(
    stores: tuple[Store, Store],
) -> None:
    clock = Clock()
    a, b = (Instance(s, LoginThrottle(clock=clock)) for s in stores)
    for attempt in range(5):
        one = a if attempt % 2 else b  # behind a load balancer: any instance
        one.check("admin", "10.0.0.1")
        one.failed("admin", "10.0.0.1")
    for one in (a, b):
        with pytest.raises(RateLimited, match="wait 60 s"):
            one.check("admin", "10.0.0.1")
    a.check("admin", "10.0.0.2")  # the real admin, elsewhere
    b.check("alice", "10.0.0.1")  # another user name
    clock.now += 60.5
    a.check("admin", "10.0.0.1")
    assert a.rows() == 0  # expired failures are gone


def test_a_success_clears_the_client(stores: tuple[Store, Store]) -> None:
    one = Instance(stores[0], LoginThrottle(clock=Clock()))
    for _ in range(4):
        one.failed("admin", "10.0.0.1")
    one.succeeded("admin", "10.0.0.1")
    for _ in range(4):
        one.failed("admin", "10.0.0.1")
    one.check("admin", "10.0.0.1")


def test_the_global_ceiling_leaves_clean_clients_alone(stores: tuple[Store, Store]) -> None:
    clock = Clock()
    one = Instance(stores[0], LoginThrottle(global_ceiling=20, clock=clock))
    for bot in range(20):  # many addresses, one failure each
        one.failed("admin", f"10.1.0.{bot}")
    with pytest.raises(RateLimited):
        one.check("admin", "10.1.0.3")  # one failure is now the limit
    one.check("admin", "192.0.2.1")  # never failed: may try
    clock.now += 61
    one.check("admin", "10.1.0.3")


def test_a_flood_of_invented_names_keeps_the_table_bounded(stores: tuple[Store, Store]) -> None:
    clock = Clock()
    one = Instance(stores[0], LoginThrottle(max_failures=20, clock=clock))
    for index in range(50):
        one.failed(f"user{index}", "10.0.0.1")
        clock.now += 0.0001
    for _ in range(7):
        one.failed("admin", "10.0.0.1")  # one client keeps its newest five only
    assert one.rows() <= 20
    # The newest entries are the ones kept.
    with pytest.raises(RateLimited):
        one.check("admin", "10.0.0.1")
