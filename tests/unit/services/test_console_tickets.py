"""Console tickets in the database: caps and expiry on both backends, and on PostgreSQL two
instances (two stores) sharing them — issued by one, redeemed by the other, exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from corral.errors import PermissionDenied, RateLimited
from corral.model.auth import Role
from corral.services._db import Db
from corral.services.console_tickets import ConsoleKind, ConsoleTickets
from corral.services.principal import Principal
from corral.services.stream_caps import ConsoleCaps
from corral.store import Store

CAPS = ConsoleCaps(per_user=3, per_vm=5, writer_reserve=2)
VNC = ConsoleKind.VNC


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'corral.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def stores(db_url: str) -> Iterator[tuple[Store, Store]]:
    """Two stores on one database: what two instances hold."""
    first = Store.from_url(db_url)
    second = Store.from_url(db_url, migrate=False)
    yield first, second
    first.dispose()
    second.dispose()


def test_unused_tickets_are_capped_per_user_and_per_vm(stores: tuple[Store, Store]) -> None:
    now = [1_000_000.0]
    tickets = ConsoleTickets(Db(stores[0]), CAPS, clock=lambda: now[0])
    viewer = Principal("eve", Role.VIEWER, token_id="t1")

    async def scenario() -> None:
        issued = [await tickets.issue(viewer, "vm1", VNC, None) for _ in range(3)]
        with pytest.raises(RateLimited, match=r"3 unused console tickets.*wait until"):
            await tickets.issue(viewer, "vm2", VNC, None)
        # A used ticket no longer counts.
        await tickets.redeem(issued[0].secret, viewer, "vm1", VNC, None)
        await tickets.issue(viewer, "vm2", VNC, None)
        # The VM's reserve: another viewer finds vm1 full for view-only users (3 of 5)...
        other = Principal("mallory", Role.VIEWER, token_id="t2")
        await tickets.issue(other, "vm1", VNC, None)
        with pytest.raises(RateLimited, match="VM 'vm1'"):
            await tickets.issue(other, "vm1", VNC, None)
        # ...an operator does not.
        operator = Principal("olga", Role.OPERATOR, token_id="t3")
        assert (await tickets.issue(operator, "vm1", VNC, None)).view_only is False
        # Expired tickets do not count either (and are pruned).
        now[0] += 31
        assert await tickets.unused("eve") == 0
        for _ in range(3):
            await tickets.issue(viewer, "vm1", VNC, None)

    asyncio.run(scenario())


def test_issued_by_one_instance_redeemed_by_another_once(stores: tuple[Store, Store]) -> None:
    a, b = (ConsoleTickets(Db(s), CAPS) for s in stores)
    who = Principal("olga", Role.OPERATOR, token_id="t3")
    ticket = asyncio.run(a.issue(who, "vm1", VNC, "https://corral.example"))
    # Only a hash of the secret is in the database.
    with stores[0].engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text("SELECT * FROM console_tickets"))]
    assert len(rows) == 1 and ticket.secret not in str(rows)
    used = asyncio.run(b.redeem(ticket.secret, who, "vm1", VNC, "https://corral.example"))
    assert used.principal == who and used.view_only is False
    for tickets in (a, b):
        with pytest.raises(PermissionDenied, match="unknown or already used"):
            asyncio.run(tickets.redeem(ticket.secret, who, "vm1", VNC, "https://corral.example"))


@pytest.mark.postgres
def test_racing_instances_redeem_a_ticket_once(pg_url: str) -> None:
    stores = [Store.from_url(pg_url)] + [Store.from_url(pg_url, migrate=False) for _ in range(7)]
    who = Principal("olga", Role.OPERATOR, token_id="t3")
    try:
        instances = [ConsoleTickets(Db(s), CAPS) for s in stores]
        ticket = asyncio.run(instances[0].issue(who, "vm1", VNC, None))

        def attempt(tickets: ConsoleTickets) -> bool:
            try:
                asyncio.run(tickets.redeem(ticket.secret, who, "vm1", VNC, None))
            except PermissionDenied:
                return False
            return True

        with ThreadPoolExecutor(len(instances)) as pool:
            wins = list(pool.map(attempt, instances))
        assert wins.count(True) == 1
    finally:
        for store in stores:
            store.dispose()
