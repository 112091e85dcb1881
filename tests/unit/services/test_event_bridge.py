"""Events between instances: two buses, each bridged to one PostgreSQL database, in one loop
(two instances as far as the database can tell); and the in-memory log of a single instance."""

from __future__ import annotations

import asyncio

import pytest

from corral.services._db import Db
from corral.services.event_bridge import PgEventBridge
from corral.services.events import Event, EventBus
from corral.store import Store

TIMEOUT_S = 10


async def _next(queue: asyncio.Queue[Event]) -> Event:
    return await asyncio.wait_for(queue.get(), TIMEOUT_S)


@pytest.mark.postgres
def test_an_event_published_on_one_instance_reaches_the_other_once(pg_url: str) -> None:
    stores = [Store.from_url(pg_url), Store.from_url(pg_url, migrate=False)]
    big = {"name": "vm1", "blob": "x" * 20_000}  # past NOTIFY's 8000 bytes: read from the table

    async def scenario() -> None:
        buses = [EventBus(), EventBus()]
        bridges = [
            PgEventBridge(Db(s), b, origin)
            for s, b, origin in zip(stores, buses, "ab", strict=True)
        ]
        for bridge in bridges:
            await bridge.start()
        a, b = buses
        try:
            async with (
                a.subscribe() as a_plain,
                a.subscribe(logged=True) as a_logged,
                b.subscribe() as b_plain,
                b.subscribe(logged=True) as b_logged,
            ):
                a.publish(Event("vm", "started", {"name": "vm1"}))
                a.publish(Event("task", "updated", big))
                b.publish(Event("host", "connected", {"name": "h1"}))
                # A's own subscribers: at once, without an id; then B's event, with one.
                assert [(await _next(a_plain)).kind for _ in range(3)] == [
                    "started",
                    "updated",
                    "connected",
                ]
                on_a = [await _next(a_logged) for _ in range(3)]
                on_b = [await _next(b_logged) for _ in range(3)]
                assert [e.id for e in on_a] == [e.id for e in on_b]  # one order everywhere
                assert all(e.id for e in on_a) and sorted(e.id or 0 for e in on_a) == [
                    e.id for e in on_a
                ]
                assert next(e for e in on_b if e.kind == "updated").data == big
                # B's own event at once, A's with their ids, and no echo of B's own.
                b_got = [await _next(b_plain) for _ in range(3)]
                assert [(e.kind, e.id is None) for e in b_got] == [
                    ("connected", True),
                    ("started", False),
                    ("updated", False),
                ]
                # No event arrives twice: the next one on each is a fresh one.
                a.publish(Event("vm", "stopped", {"name": "vm1"}))
                assert (await _next(a_plain)).kind == "stopped"
                assert (await _next(b_plain)).kind == "stopped"
                # A client reconnecting to B after the first event gets the rest; one from
                # long ago (or from another database) is told to reload.
                first = on_a[0].id or 0
                replayed = await b.replay(first)
                assert replayed is not None
                assert [e.id for e in replayed[:2]] == [e.id for e in on_a[1:]]
                assert replayed[-1].kind == "stopped"
                assert await b.replay(first + 10**9) is None
        finally:
            for bridge in bridges:
                await bridge.stop()

    try:
        asyncio.run(scenario())
    finally:
        for store in stores:
            store.dispose()


def test_the_ring_log_replays_what_it_keeps_and_asks_for_a_reload_otherwise() -> None:
    async def scenario() -> None:
        bus = EventBus()
        async with bus.subscribe(logged=True) as logged:
            for index in range(3):
                bus.publish(Event("vm", "updated", {"n": index}))
            ids = [(await _next(logged)).id or 0 for _ in range(3)]
        assert ids == sorted(ids) and len(set(ids)) == 3
        again = await bus.replay(ids[0])
        assert again is not None and [e.data["n"] for e in again] == [1, 2]
        assert await bus.replay(ids[2]) == []
        assert await bus.replay(ids[0] - 5) is None  # before anything kept (a restart)
        assert await bus.replay(ids[2] + 1) is None  # never issued here

    asyncio.run(scenario())
