"""Task leases, instance heartbeats and job leases, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from corral.errors import Conflict
from corral.model.task import TaskState
from corral.store import (
    Store,
    Task,
    claim_tasks,
    create_task,
    get_task,
    heartbeat,
    lease_valid,
    live_instances,
    register_instance,
    release_lease,
    release_task_leases,
    renew_task_leases,
    stop_instance,
    take_lease,
    take_leases,
    task_params,
    update_task,
)
from corral.store.coltypes import utcnow

LEASE = timedelta(seconds=3)


def _expire(store: Store, task_id: str) -> None:
    with store.session() as s:
        s.execute(update(Task).where(Task.id == task_id).values(lease_expires_at=utcnow() - LEASE))


def test_a_task_is_held_by_its_owner_until_its_lease_expires(store: Store) -> None:
    with store.session() as s:
        info = create_task(
            s, kind="vm.create", target="web", created_by="a", owner="A", lease=LEASE,
            params={"start": True},
        )  # fmt: skip
        task_params_ = task_params(s, info.id)
    assert info.owner == "A" and info.attempt == 1 and task_params_ == {"start": True}
    with store.session() as s:
        assert claim_tasks(s, "B", LEASE) == []  # A's lease lasts
        assert renew_task_leases(s, "A", {info.id: 1}, LEASE) == {info.id}
    _expire(store, info.id)
    with store.session() as s:
        [claimed] = claim_tasks(s, "B", LEASE)
    assert claimed.id == info.id and claimed.owner == "B" and claimed.attempt == 2
    with store.session() as s:
        # A learns it lost the task at its next renewal, and its writes are fenced off.
        assert renew_task_leases(s, "A", {info.id: 1}, LEASE) == set()
    with store.session() as s, pytest.raises(Conflict, match="taken over"):
        update_task(s, info.id, progress=0.5, attempt=1)
    with store.session() as s:
        done = update_task(s, info.id, state=TaskState.FAILED, error="x", attempt=2)
    assert done.state is TaskState.FAILED
    with store.session() as s:
        assert claim_tasks(s, "C", LEASE, any_lease=True) == []  # finished: nobody claims it


def test_tasks_without_a_lease_and_released_ones_are_claimable(store: Store) -> None:
    with store.session() as s:
        old = create_task(s, kind="vm.clone", target="a", created_by="a")  # before leases
        mine = create_task(s, kind="vm.migrate", target="b", created_by="a", owner="A", lease=LEASE)
        release_task_leases(s, "A", [mine.id])
    with store.session() as s:
        claimed = claim_tasks(s, "B", LEASE)
    assert [t.id for t in claimed] == [old.id, mine.id]


def test_at_start_on_sqlite_every_unfinished_task_is_claimed(store: Store) -> None:
    with store.session() as s:
        held = create_task(s, kind="vm.clone", target="a", created_by="a", owner="A", lease=LEASE)
    with store.session() as s:
        assert [t.id for t in claim_tasks(s, "B", LEASE, any_lease=True)] == [held.id]


def test_concurrent_claims_take_each_task_once(store: Store) -> None:
    """SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on SQLite: no task is claimed twice."""
    with store.session() as s:
        ids = {
            create_task(s, kind="vm.clone", target=f"v{i}", created_by="a").id for i in range(40)
        }
    results: dict[str, list[str]] = {}
    barrier = threading.Barrier(4)

    def claimer(name: str) -> None:
        barrier.wait()
        got: list[str] = []
        while True:
            with store.session() as s:
                batch = claim_tasks(s, name, LEASE, limit=3)
            if not batch:
                break
            got += [t.id for t in batch]
        results[name] = got

    threads = [threading.Thread(target=claimer, args=(f"I{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    claimed = [i for got in results.values() for i in got]
    assert sorted(claimed) == sorted(ids)  # every task once, none twice
    with store.session() as s:
        assert all(get_task(s, i).attempt == 2 for i in ids)


def test_instances_beat_and_stop(store: Store) -> None:
    with store.session() as s:
        register_instance(s, "A", "m1", 10)
        register_instance(s, "B", "m2", 20)
        heartbeat(s, "A")
        stop_instance(s, "B")
    with store.session() as s:
        assert [i.id for i in live_instances(s, timedelta(seconds=30))] == ["A"]


def test_a_job_lease_has_one_holder_and_a_growing_fencing_token(store: Store) -> None:
    ttl = timedelta(seconds=30)
    with store.session() as s:
        assert take_lease(s, "reconcile", "A", ttl) == 1
        assert take_lease(s, "reconcile", "B", ttl) is None  # A holds it
        assert take_lease(s, "reconcile", "A", ttl) == 1  # renewed, same token
        assert lease_valid(s, "reconcile", 1)
        release_lease(s, "reconcile", "A")
    with store.session() as s:
        assert not lease_valid(s, "reconcile", 1)
        assert take_lease(s, "reconcile", "B", ttl) == 2
        assert take_lease(s, "reconcile", "A", timedelta(0)) is None
    with store.session() as s:
        assert take_lease(s, "reconcile", "B", -ttl) == 2  # renewed into the past: expired
    with store.session() as s:
        assert take_lease(s, "reconcile", "A", ttl) == 3
        assert not lease_valid(s, "reconcile", 2)  # B's writes are fenced off


def test_leases_taken_and_renewed_together(store: Store) -> None:
    """take_leases: what one holder renews in bulk keeps its token and is extended; free,
    new and expired ones are taken (the token grows), another holder's live lease is not."""
    ttl = timedelta(seconds=30)
    names = [f"reconcile:h{i}" for i in range(5)]
    with store.session() as s:
        assert take_leases(s, names, "A", ttl) == dict.fromkeys(names, 1)
        assert take_lease(s, "theirs", "B", ttl) == 1
        assert take_lease(s, "lapsed", "B", -ttl) == 1  # B's, already expired
    with store.session() as s:
        got = take_leases(s, [*names, "theirs", "lapsed", "new"], "A", ttl)
    assert got == {**dict.fromkeys(names, 1), "theirs": None, "lapsed": 2, "new": 1}
    with store.session() as s:
        # Renewed: still valid for a while, B cannot take them.
        assert all(lease_valid(s, name, 1) for name in names)
        assert take_leases(s, names, "B", ttl) == dict.fromkeys(names)
        assert take_leases(s, names, "A", -ttl) == dict.fromkeys(names, 1)  # now expired
    with store.session() as s:
        assert take_leases(s, names, "B", ttl) == dict.fromkeys(names, 2)
