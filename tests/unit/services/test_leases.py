"""Run-once jobs across instances: one holder per lease, taken over when the holder stops
renewing, with a higher fencing token that refuses the former holder's writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from corral import store
from corral.services._db import Db
from corral.services.leases import LeaseLost, Leases
from corral.store import Store
from tests.postgres import PgAdmin, fresh_pg_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def db(pg_admin: PgAdmin) -> Iterator[Db]:
    for url in fresh_pg_database(pg_admin):
        database = Store.from_url(url)
        yield Db(database)
        database.dispose()


async def test_a_lease_has_one_holder_and_moves_when_it_stops_renewing(db: Db) -> None:
    a = Leases(db, "instance-a", ttl_s=0.5)
    b = Leases(db, "instance-b", ttl_s=0.5)
    assert await a.take("reconcile:h1") == 1
    assert await b.holds("reconcile:h1") is None  # A holds it
    assert await a.holds("reconcile:h1") == 1 and a.token("reconcile:h1") == 1
    # A stalls (renews no more): once its lease has run out, B takes it over.
    started = time.monotonic()
    while (token := await b.take("reconcile:h1")) is None:
        assert time.monotonic() - started < 10, "B never got the lease"
        await asyncio.sleep(0.05)  # the poll's interval
    assert token == 2

    written: list[str] = []

    def mark(session: Session) -> None:
        written.append(session.get_bind().dialect.name)

    with pytest.raises(LeaseLost, match="no longer held"):
        await a.write("reconcile:h1", 1, mark)  # the former holder's write is fenced off
    assert written == [] and a.token("reconcile:h1") is None
    await b.write("reconcile:h1", 2, mark)
    assert written == ["postgresql"]
    await a.renew()  # A renews what it wants: B's lease lasts, so A learns it holds nothing
    assert a.token("reconcile:h1") is None

    # A stopping instance gives its leases up at once.
    await b.stop()
    assert await a.take("reconcile:h1") == 3
    assert db.sync(lambda s: store.lease_valid(s, "reconcile:h1", 3))
