"""Tasks: lifecycle, progress and listings."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from corral.errors import Conflict, InvalidRequest, NotFound
from corral.model.task import TaskState
from corral.store import (
    Store,
    Task,
    create_task,
    get_task,
    list_tasks,
    list_unfinished_tasks,
    update_task,
)
from corral.store.coltypes import utcnow


def test_create_and_get(store: Store) -> None:
    with store.session() as s:
        info = create_task(s, kind="vm.create", target="web", created_by="alice")
    assert len(info.id) == 32 and info.state is TaskState.PENDING and info.progress == 0.0
    with store.session() as s:
        again = get_task(s, info.id)
    assert again == info
    with store.session() as s, pytest.raises(NotFound, match="no task"):
        get_task(s, "f" * 32)


def test_progress_then_success(store: Store) -> None:
    with store.session() as s:
        task_id = create_task(s, kind="vm.import", target="web", created_by="a").id
    with store.session() as s:
        running = update_task(s, task_id, state=TaskState.RUNNING, phase="copying")
        half = update_task(s, task_id, progress=0.5, bytes_done=512, bytes_total=1024)
    assert running.state is TaskState.RUNNING and running.finished_at is None
    assert (half.progress, half.phase, half.bytes_done, half.bytes_total) == (
        0.5,
        "copying",
        512,
        1024,
    )
    assert half.updated_at >= half.created_at
    with store.session() as s:
        done = update_task(s, task_id, state=TaskState.SUCCEEDED, result={"uuid": "u", "n": [1, 2]})
    assert done.progress == 1.0 and done.finished_at is not None
    with store.session() as s:
        stored = get_task(s, task_id)
    assert stored.result == {"uuid": "u", "n": [1, 2]}
    assert stored.state is TaskState.SUCCEEDED and stored.finished_at == done.finished_at


def test_finished_tasks_do_not_change(store: Store) -> None:
    with store.session() as s:
        task_id = create_task(s, kind="k", target="t", created_by="a").id
        update_task(s, task_id, state=TaskState.CANCELLED)
    with store.session() as s:
        with pytest.raises(Conflict, match="already finished \\(cancelled\\)"):
            update_task(s, task_id, progress=0.3)
        with pytest.raises(Conflict):
            update_task(s, task_id, state=TaskState.RUNNING)
    with store.session() as s:
        assert get_task(s, task_id).progress == 0.0


def test_failure_records_the_error(store: Store) -> None:
    with store.session() as s:
        task_id = create_task(s, kind="k", target="t", created_by="a").id
        update_task(s, task_id, state=TaskState.RUNNING, progress=0.2)
        failed = update_task(s, task_id, state=TaskState.FAILED, error="disk full; free space")
    assert failed.error == "disk full; free space" and failed.progress == 0.2


def test_progress_is_a_fraction(store: Store) -> None:
    with store.session() as s:
        task_id = create_task(s, kind="k", target="t", created_by="a").id
        with pytest.raises(InvalidRequest, match="fraction"):
            update_task(s, task_id, progress=42.0)
        with pytest.raises(InvalidRequest):
            update_task(s, task_id, progress=-0.1)


def test_lists(store: Store) -> None:
    base = utcnow() - timedelta(hours=1)
    ids = []
    with store.session() as s:
        for i in range(5):
            info = create_task(s, kind="k", target=f"t{i}", created_by="a")
            row = s.get(Task, info.id)
            assert row is not None
            row.created_at = base + timedelta(minutes=i)
            ids.append(info.id)
        update_task(s, ids[0], state=TaskState.RUNNING)
        update_task(s, ids[1], state=TaskState.SUCCEEDED)
        update_task(s, ids[2], state=TaskState.RUNNING)
        update_task(s, ids[2], state=TaskState.FAILED, error="x")
    with store.session() as s:
        assert [t.id for t in list_tasks(s)] == ids[::-1]
        assert [t.id for t in list_tasks(s, limit=2)] == [ids[4], ids[3]]
        assert [t.id for t in list_tasks(s, state=TaskState.RUNNING)] == [ids[0]]
        assert [t.id for t in list_tasks(s, state=TaskState.PENDING)] == [ids[4], ids[3]]
        assert [t.id for t in list_unfinished_tasks(s)] == [ids[0], ids[3], ids[4]]


def _wait_for_lock_waiter(engine: Engine) -> None:
    """Poll until another PostgreSQL backend is blocked on a lock (bounded)."""
    deadline = time.monotonic() + 10
    query = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(query).scalar():
                return
        time.sleep(0.02)
    raise AssertionError("the second writer never blocked on the task's row lock")


def test_concurrent_final_states_only_one_wins(store: Store, engine: Engine) -> None:
    """A worker finishing and a user cancelling at the same moment: the second one must see
    the first one's result and get Conflict, not overwrite it."""
    with store.session() as s:
        task_id = create_task(s, kind="k", target="t", created_by="a").id
        update_task(s, task_id, state=TaskState.RUNNING)
    first_updated = threading.Event()
    release_first = threading.Event()

    def finish() -> None:
        with store.session() as s:
            update_task(s, task_id, state=TaskState.SUCCEEDED)
            first_updated.set()
            assert release_first.wait(timeout=15)

    def cancel() -> None:
        assert first_updated.wait(timeout=15)
        with store.session() as s:
            update_task(s, task_id, state=TaskState.CANCELLED)

    with ThreadPoolExecutor(max_workers=2) as pool:
        finisher = pool.submit(finish)
        canceller = pool.submit(cancel)
        assert first_updated.wait(timeout=15)
        if engine.dialect.name == "postgresql":
            _wait_for_lock_waiter(engine)
        release_first.set()
        finisher.result(timeout=30)
        with pytest.raises(Conflict, match="already finished \\(succeeded\\)"):
            canceller.result(timeout=30)
    with store.session() as s:
        assert get_task(s, task_id).state is TaskState.SUCCEEDED
