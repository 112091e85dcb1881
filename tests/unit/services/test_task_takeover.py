"""Tasks a dead instance left are taken over from the database by a live one, each resolved
from libvirt by its kind's resumer and finished once; a stalled former owner is fenced off.

The dead instance is rows in PostgreSQL with an owner that no longer renews (the processes
and ``kill -9`` are in tests/integration/api/test_instances_takeover.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import update

from corral import store
from corral.model.task import TaskInfo, TaskState
from corral.services.principal import SYSTEM
from corral.services.tasks import TaskContext
from corral.store.coltypes import utcnow
from corral.testbed.guest_domains import wait_until
from tests.postgres import PgAdmin, fresh_pg_database
from tests.unit.api.conftest import Api, running_api

pytestmark = pytest.mark.postgres

DEAD = "dead0000dead0000"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, pg_admin: PgAdmin) -> Iterator[Api]:
    """One app on a PostgreSQL database for the module (its tests use names of their own)."""
    for url in fresh_pg_database(pg_admin):
        with running_api(tmp_path_factory.mktemp("takeover"), database_url=url) as running:
            yield running


def _left_by_dead(api: Api, kind: str, target: str, params: dict[str, Any]) -> str:
    """A running task whose instance died: its lease ran out a moment ago."""

    def make(s: Any) -> str:
        info = store.create_task(
            s, kind=kind, target=target, created_by="admin", owner=DEAD,
            lease=timedelta(seconds=-1), params=params,
        )  # fmt: skip
        store.update_task(s, info.id, state=TaskState.RUNNING)
        return info.id

    return api.services.db.sync(make)


def _finished(api: Api, task_id: str) -> TaskInfo:
    def done() -> TaskInfo | None:
        task = api.services.db.sync(lambda s: store.get_task(s, task_id))
        return task if task.state.finished else None

    return wait_until(done, 15, f"task {task_id} to be taken over", interval=0.1)


def test_a_dead_instances_tasks_are_resolved_from_libvirt(api: Api) -> None:
    h = api.headers()
    made = {"name": "tk-made", "disks": [{"size_gib": 1}], "nics": [], "start": False}
    assert api.client.post("/api/v1/vms", json=made, headers=h).status_code == 201
    # The dead instance had made the VM, not started it yet; the other creation never got as
    # far as its VM, only a volume; a clone has no resumer.
    create_done = _left_by_dead(api, "vm.create", "tk-made", {"host": "test", "start": True})
    create_half = _left_by_dead(api, "vm.create", "tk-half", {"host": "test", "start": False})
    clone = _left_by_dead(api, "vm.clone", "tk-clone", {})
    started = time.monotonic()

    task = _finished(api, create_done)
    assert task.state is TaskState.SUCCEEDED and task.attempt == 2
    assert task.owner == api.services.tasks.owner
    assert task.result == {"vm": "tk-made", "uuid": task.result["uuid"], "started": True,
                           "resumed": True}  # fmt: skip
    assert api.client.get("/api/v1/vms/tk-made", headers=h).json()["state"] == "running"
    half = _finished(api, create_half)
    assert half.state is TaskState.FAILED and "interrupted" in (half.error or "")
    assert api.client.get("/api/v1/vms/tk-half", headers=h).status_code == 404
    cloned = _finished(api, clone)
    assert cloned.state is TaskState.FAILED and "interrupted" in (cloned.error or "")
    print(f"takeover of 3 expired tasks: {time.monotonic() - started:.2f} s")

    # A graceful shutdown the dead instance was waiting for, its time up: forced off.
    since = time.time() - 120
    shutdown = _left_by_dead(
        api, "vm.shutdown", "tk-made", {"timeout_s": 60, "force": True, "since": since}
    )
    ended = _finished(api, shutdown)
    assert ended.state is TaskState.SUCCEEDED, ended.error
    assert ended.result == {"vm": "tk-made", "forced": True, "resumed": True}
    assert api.client.get("/api/v1/vms/tk-made", headers=h).json()["state"] == "shutoff"
    api.client.delete("/api/v1/vms/tk-made", headers=h)


def test_a_creation_lost_between_its_domain_and_its_record_is_undone(api: Api) -> None:
    """The creator was killed after defining the domain, before recording the VM (seen in
    bench/failover.py): the taker undefines the domain and deletes its volume, then fails
    the task, instead of failing it beside a domain the reconciler would later adopt."""
    h = api.headers()
    made = {"name": "tk-unrecorded", "disks": [{"size_gib": 1}], "nics": [], "start": False}
    assert api.client.post("/api/v1/vms", json=made, headers=h).status_code == 201
    api.services.db.sync(lambda s: store.delete_vm(s, "tk-unrecorded"))  # never recorded
    left = _left_by_dead(api, "vm.create", "tk-unrecorded", {"host": "test", "start": True})

    task = _finished(api, left)
    assert task.state is TaskState.FAILED and "interrupted" in (task.error or "")
    host = api.services.hosts.get("test")

    async def left_on_host() -> tuple[list[str], list[str]]:
        domains = [r.name for r in await host.list_domains()]
        volumes = [v.name for v in await host.storage.list_volumes()]
        return domains, volumes

    assert api.client.portal is not None
    domains, volumes = api.client.portal.call(left_on_host)
    assert "tk-unrecorded" not in domains
    assert not [v for v in volumes if v.startswith("tk-unrecorded-")], volumes


def test_a_task_held_by_a_live_instance_is_left_alone(api: Api) -> None:
    alive = api.services.db.sync(
        lambda s: store.create_task(
            s,
            kind="vm.clone",
            target="tk-alive",
            created_by="admin",
            owner="alive0000alive00", lease=timedelta(seconds=60),
        )
    )  # fmt: skip

    async def claim() -> list[TaskInfo]:
        return await api.services.task_leases.claim()

    assert api.client.portal is not None
    assert api.client.portal.call(claim) == []
    assert api.services.db.sync(lambda s: store.get_task(s, alive.id)).state is TaskState.PENDING


def test_an_owner_that_lost_its_lease_stops_without_writing(api: Api) -> None:
    services = api.services
    release = asyncio.Event()
    stopped: list[str] = []

    async def body(ctx: TaskContext) -> dict[str, Any]:
        try:
            await release.wait()
        except asyncio.CancelledError:
            stopped.append(ctx.id)
            raise
        return {}

    async def start() -> TaskInfo:
        return await services.tasks.start("vm.clone", "tk-fenced", SYSTEM, body)

    assert api.client.portal is not None
    info = api.client.portal.call(start)
    wait_until(
        lambda: services.db.sync(lambda s: store.get_task(s, info.id)).state is TaskState.RUNNING,
        10,
        "the task to run",
    )
    # Meanwhile another instance decided this one was dead and took the task over.
    with services.store.session() as s:
        s.execute(
            update(store.Task)
            .where(store.Task.id == info.id)
            .values(
                owner="taker000taker000",
                attempt=2,
                lease_expires_at=utcnow() + timedelta(seconds=60),
            )
        )
    wait_until(lambda: stopped == [info.id], 10, "the former owner to stop the body")
    row = services.db.sync(lambda s: store.get_task(s, info.id))
    assert row.state is TaskState.RUNNING and row.owner == "taker000taker000"  # nothing written


def test_a_cancel_through_another_instance_stops_the_body_here(api: Api) -> None:
    services = api.services
    started: list[str] = []
    stopped: list[str] = []

    async def body(ctx: TaskContext) -> dict[str, Any]:
        started.append(ctx.id)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.append(ctx.id)
            raise
        return {}

    async def start() -> TaskInfo:
        return await services.tasks.start("vm.clone", "tk-cancelled", SYSTEM, body)

    assert api.client.portal is not None
    info = api.client.portal.call(start)
    # A cancel before the body runs would leave nothing to stop (the task then never starts
    # it, rightly); the case here is a body that runs.
    wait_until(lambda: started == [info.id], 10, "the body to run")
    # Another instance's cancel: it finds no body of its own and ends the row.
    services.db.sync(
        lambda s: store.update_task(s, info.id, state=TaskState.CANCELLED, error="cancelled")
    )
    wait_until(lambda: stopped == [info.id], 10, "the body to stop at the next renewal")
    row = services.db.sync(lambda s: store.get_task(s, info.id))
    assert row.state is TaskState.CANCELLED and row.error == "cancelled"


def test_a_network_apply_left_behind_is_applied_again(api: Api) -> None:
    """Applying a network's intent is idempotent: the taker runs it again."""
    h = api.headers()
    made = api.client.post(
        "/api/v1/networks", json={"name": "tk-net", "kind": "isolated"}, headers=h
    )
    assert made.status_code == 202, made.text
    first = _finished(api, made.json()["id"])
    assert first.state is TaskState.SUCCEEDED, first.error
    left = _left_by_dead(api, "network.apply", "tk-net", {})
    again = _finished(api, left)
    assert again.state is TaskState.SUCCEEDED and again.attempt == 2, again.error
    assert again.result is not None and again.result["network"] == "tk-net"
    gone = api.client.delete("/api/v1/networks/tk-net", headers=h)
    assert _finished(api, gone.json()["id"]).state is TaskState.SUCCEEDED


def _start_waiting(api: Api, target: str, stopped: list[str]) -> TaskInfo:
    """A running task whose body waits until it is stopped (noted in ``stopped``)."""

    async def body(ctx: TaskContext) -> dict[str, Any]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.append(ctx.id)
            raise
        return {}

    async def start() -> TaskInfo:
        return await api.services.tasks.start("vm.clone", target, SYSTEM, body)

    assert api.client.portal is not None
    info = api.client.portal.call(start)
    wait_until(lambda: _row(api, info.id).state is TaskState.RUNNING, 10, "the task to run")
    return info


def _row(api: Api, task_id: str) -> TaskInfo:
    return api.services.db.sync(lambda s: store.get_task(s, task_id))


def _expiry(api: Api, task_id: str) -> Any:
    return api.services.db.sync(lambda s: s.get(store.Task, task_id).lease_expires_at)


def test_leases_are_renewed_while_every_worker_thread_is_busy(api: Api) -> None:
    """A loaded instance (every thread of asyncio's default pool in a long call) still renews
    its leases: renewals have a thread of their own. They queued behind ten imports before,
    and other instances took over work this one was doing."""
    stopped: list[str] = []
    release = threading.Event()

    async def fill_the_pool() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(40):
            loop.run_in_executor(None, release.wait, 30)

    assert api.client.portal is not None
    info = _start_waiting(api, "tk-busy", stopped)
    try:
        api.client.portal.call(fill_the_pool)
        first = _expiry(api, info.id)
        wait_until(lambda: _expiry(api, info.id) > first + timedelta(seconds=2), 10, "renewals")
    finally:
        release.set()
    row = _row(api, info.id)
    assert row.owner == api.services.tasks.owner and row.attempt == 1 and not stopped
    api.services.db.sync(  # ended through another instance: stopped at the next renewal
        lambda s: store.update_task(s, info.id, state=TaskState.CANCELLED, error="cancelled")
    )
    wait_until(lambda: stopped == [info.id], 10, "the body to stop")


def test_a_body_whose_renewals_do_not_get_through_waits_then_goes_on(
    api: Api, pg_admin: PgAdmin
) -> None:
    """A renewal that hangs (here: its row locked by another transaction, as when the
    database is cut off from this instance only) must not let the body begin steps past its
    lease, beside an instance that may take the task: the body waits at its next checkpoint
    from before the lease can have run out; once a renewal gets through and nobody took the
    task, it goes on under the same attempt."""
    steps: list[float] = []

    async def body(ctx: TaskContext) -> dict[str, Any]:
        while len(steps) < 10_000:
            await ctx.progress(phase="a step")  # the checkpoint before each step
            steps.append(time.monotonic())
            await asyncio.sleep(0.05)
        return {}

    async def start() -> TaskInfo:
        return await api.services.tasks.start("vm.clone", "tk-hung", SYSTEM, body)

    assert api.client.portal is not None
    info = api.client.portal.call(start)
    wait_until(lambda: len(steps) > 2 or None, 10, "the body to run")
    url = api.services.store.engine.url
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(False)) as locker:
        locker.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (info.id,))
        expiry = _expiry(api, info.id)
        # Past the end of the lease: the body stopped taking steps before it.
        wait_until(lambda: api.services.db.sync(store.db_now) > expiry, 10, "the lease's end")
        held_at = len(steps)
        wait_until(lambda: api.services.db.sync(store.db_now) > expiry + timedelta(seconds=0.5),
                   10, "a while")  # fmt: skip
        assert len(steps) == held_at, "the body took steps past its lease"
    wait_until(lambda: len(steps) > held_at or None, 10, "the body to go on")
    row = _row(api, info.id)
    assert row.attempt == 1 and row.owner == api.services.tasks.owner
    assert row.state is TaskState.RUNNING
    api.services.db.sync(  # ended through another instance
        lambda s: store.update_task(s, info.id, state=TaskState.CANCELLED, error="cancelled")
    )


def test_progress_refused_after_a_takeover_ends_the_writer_quietly(api: Api) -> None:
    """A progress write refused (the task was taken over) stops the writer without leaving
    an exception nobody retrieves (asyncio logged 'Task exception was never retrieved')."""
    contexts: list[TaskContext] = []

    async def body(ctx: TaskContext) -> dict[str, Any]:
        contexts.append(ctx)
        await asyncio.Event().wait()
        return {}

    async def start() -> TaskInfo:
        return await api.services.tasks.start("vm.clone", "tk-progress", SYSTEM, body)

    assert api.client.portal is not None
    info = api.client.portal.call(start)
    wait_until(lambda: contexts or None, 10, "the body to run")
    with api.services.store.session() as s:  # another instance took it over
        taken = {"owner": "taker000taker000", "attempt": 2}
        s.execute(update(store.Task).where(store.Task.id == info.id).values(**taken))

    async def report() -> BaseException | None:
        contexts[0].report(0.5)
        writer = contexts[0]._writer  # the one write in flight
        assert writer is not None
        await asyncio.wait({writer})
        return writer.exception()

    assert api.client.portal.call(report) is None
    assert _row(api, info.id).progress != 0.5
