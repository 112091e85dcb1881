"""One long operation per VM across instances: the same Conflict from another instance, and
the locks of an instance that died lapse."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from corral.errors import Conflict
from corral.services._db import Db
from corral.services.locks import OperationLocks
from corral.store import Store
from tests.postgres import PgAdmin, fresh_pg_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def db(pg_admin: PgAdmin) -> Iterator[Db]:
    for url in fresh_pg_database(pg_admin):
        database = Store.from_url(url)
        yield Db(database)
        database.dispose()


async def test_a_vm_busy_on_one_instance_is_busy_on_the_other(db: Db) -> None:
    a, b = OperationLocks(db, "instance-a"), OperationLocks(db, "instance-b")
    await a.start()
    try:
        async with a.hold("web", "shutdown"):
            with pytest.raises(Conflict, match="VM 'web' is busy with shutdown; wait"):
                async with b.hold("web", "delete"):
                    pass
            with pytest.raises(Conflict, match="busy with shutdown"):
                b.acquire("web", "migration")
            assert await b.busy_anywhere() == {"web": "shutdown"}
            assert b.busy("web") is None  # nothing of b's own
        async with b.hold("web", "delete"):  # released by a: free for b
            assert (await a.busy_anywhere())["web"] == "delete"

        # a takes a VM for a migration, then dies (its renewals stop): the lock lapses.
        a.acquire("db", "migration")
        await a.stop()
        started = time.monotonic()
        while "db" in await b.busy_anywhere():
            assert time.monotonic() - started < 10, "the dead instance's lock never lapsed"
            await asyncio.sleep(0.1)  # the poll's interval
        release = b.acquire("db", "migration (resumed)")
        release()
        assert await b.busy_anywhere() == {}  # written before release() returns
    finally:
        await a.stop()
        await b.stop()


async def test_a_vm_released_by_a_refused_request_is_free_for_the_next_at_once(db: Db) -> None:
    # A migration refused by its pre-flight releases the VM in the same request; the very next
    # request (on either instance) must not find the row still there.
    a, b = OperationLocks(db, "instance-a"), OperationLocks(db, "instance-b")
    await a.start()
    try:
        for _ in range(20):
            a.acquire("web", "migration")()
            a.acquire("web", "migration")()
            b.acquire("web", "a disk move")()
        assert await a.busy_anywhere() == {}
    finally:
        await a.stop()
        await b.stop()
