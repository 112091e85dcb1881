"""Host and power tasks a dead instance left are resolved from the real state by their kind's
resumer, on libvirt's test:///default host: finished where the work was done, failed with
what to check and re-run where it was not, and never done twice.

The dead instance is a task row whose owner no longer renews its lease (the processes and
``kill -9`` are in tests/integration/api/test_instances_takeover.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from corral import store
from corral.model.task import TaskInfo, TaskState
from corral.services.principal import SYSTEM
from corral.services.tasks import SHUT_DOWN, TaskContext
from corral.store.coltypes import utcnow
from corral.testbed.guest_domains import wait_until
from tests.unit.api.conftest import Api, api

__all__ = ["api"]  # fixtures

DEAD = "dead0000dead0000"
HOST = "test"


def _left_by_dead(
    api: Api,
    kind: str,
    target: str,
    params: dict[str, Any] | None = None,
    *,
    result: dict[str, Any] | None = None,
    age_s: float = 0,
    owner: str = DEAD,
    lease_s: float = -1,
) -> str:
    """A running task whose instance died (its lease ran out), begun ``age_s`` ago."""

    def make(s: Any) -> str:
        info = store.create_task(
            s, kind=kind, target=target, created_by="admin", owner=owner,
            lease=timedelta(seconds=lease_s), params=params,
        )  # fmt: skip
        store.update_task(s, info.id, state=TaskState.RUNNING, result=result)
        s.execute(
            update(store.Task)
            .where(store.Task.id == info.id)
            .values(created_at=utcnow() - timedelta(seconds=age_s))
        )
        return info.id

    task_id = api.services.db.sync(make)
    _claim(api)
    return task_id


def _claim(api: Api) -> None:
    """One claim of expired leases, as another instance's claim loop makes twice a second:
    this app is on SQLite, the one instance there can be, so after its start it claims
    nothing by itself (a lapsed lease there only means a slow process)."""
    assert api.client.portal is not None
    api.client.portal.call(api.services.task_leases.claim)


def _finished(api: Api, task_id: str) -> TaskInfo:
    def done() -> TaskInfo | None:
        task = api.services.db.sync(lambda s: store.get_task(s, task_id))
        return task if task.state.finished else None

    return wait_until(done, 20, f"task {task_id} to be taken over", interval=0.1)


def _host(api: Api) -> dict[str, Any]:
    answer = api.client.get(f"/api/v1/hosts/{HOST}", headers=api.headers())
    assert answer.status_code == 200, answer.text
    host: dict[str, Any] = answer.json()
    return host


def _recorded_standby(api: Api, standby: bool) -> None:
    """What another instance recorded (the database, not this instance's memory)."""
    api.services.db.sync(lambda s: store.set_standby(s, HOST, standby))


def _audited(api: Api, action: str) -> list[str]:
    entries = api.client.get(
        "/api/v1/audit", params={"action": action, "limit": 5}, headers=api.headers()
    ).json()["items"]
    return [e["outcome"] for e in entries if e["target"] in (HOST, "cluster")]


def test_an_enrollment_is_done_if_the_host_was_recorded_else_failed_to_run_again(
    api: Api,
) -> None:
    lost = _finished(api, _left_by_dead(api, "host.enroll", "rs-never"))
    assert lost.state is TaskState.FAILED and lost.attempt == 2
    assert "before the host was recorded: Corral recorded nothing" in (lost.error or "")
    assert "run `corral host enroll rs-never …` again" in (lost.error or "")
    assert api.client.get("/api/v1/hosts/rs-never", headers=api.headers()).status_code == 404
    # Recorded is the last step: the dead instance had finished the enrollment's work.
    done = _finished(api, _left_by_dead(api, "host.enroll", HOST))
    assert done.state is TaskState.SUCCEEDED, done.error
    assert done.result is not None and done.result["resumed"] is True
    assert done.result["host"] == HOST and done.result["uri"] == "test:///default"


def test_a_rotation_not_confirmed_fails_saying_the_host_restores_its_certificates(
    api: Api,
) -> None:
    lost = _finished(api, _left_by_dead(api, "host.rotate-certs", HOST))
    assert lost.state is TaskState.FAILED
    assert "before the new certificates were confirmed" in (lost.error or "")
    assert f"run `corral host rotate-certs {HOST}` again" in (lost.error or "")
    assert _audited(api, "host.rotate-certs")[0].startswith("error: the certificate rotation")


def test_a_power_off_is_never_asked_twice_and_the_host_is_marked_as_it_is(api: Api) -> None:
    # Standby is recorded before the driver is asked: without it, nothing was switched.
    early = _finished(api, _left_by_dead(api, "host.power_off", HOST))
    assert early.state is TaskState.FAILED
    assert "before its driver was asked: nothing was switched" in (early.error or "")
    # Recorded, and its time is up, but the host still answers libvirt: not in standby.
    _recorded_standby(api, True)
    late = _finished(api, _left_by_dead(api, "host.power_off", HOST, age_s=3600))
    assert late.state is TaskState.FAILED
    assert "did not go down: it is running and connected" in (late.error or "")
    assert "run `corral host power-off test` again" in (late.error or "")
    assert _host(api)["standby"] is False


def test_a_power_on_is_done_once_the_host_answers(api: Api) -> None:
    _recorded_standby(api, True)
    done = _finished(api, _left_by_dead(api, "host.power_on", HOST))
    assert done.state is TaskState.SUCCEEDED, done.error
    assert done.result == {"host": HOST, "standby": False, "resumed": True}
    assert _host(api)["standby"] is False
    assert _audited(api, "host.power_on")[0] == "ok"


def test_a_power_plan_settles_the_host_it_was_switching_and_stops(api: Api) -> None:
    _recorded_standby(api, True)
    switching = {"woken": [], "switching": {"host": HOST, "to": "on"}}
    stopped = _finished(api, _left_by_dead(api, "power.apply", "cluster", result=switching))
    assert stopped.state is TaskState.FAILED
    error = stopped.error or ""
    assert "the power plan was interrupted" in error, error
    assert f"host {HOST}, which it was waking, is on" in error
    assert "run `corral power apply` again" in error
    assert _host(api)["standby"] is False
    assert api.services.power.apply.running is None  # the next plan may run


def test_an_evacuation_goes_on_with_the_vms_still_on_the_host(api: Api) -> None:
    h = api.headers()
    spec = {"name": "rs-evac", "disks": [{"size_gib": 1}], "nics": [], "start": True}
    assert api.client.post("/api/v1/vms", json=spec, headers=h).status_code == 201
    try:
        # A move of it the dead instance had started, still running (another instance holds it).
        move = _left_by_dead(api, "vm.migrate", "rs-evac", owner="alive000alive000", lease_s=60)
        evacuation = _left_by_dead(api, "host.evacuate", HOST, {"template": None})
        _running_phase(api, evacuation, lambda phase: f"move of rs-evac (task {move})" in phase)
        api.services.db.sync(
            lambda s: store.update_task(s, move, state=TaskState.FAILED, error="no room")
        )
        ended = _finished(api, evacuation)
        # It did not move what had moved, and went on with what is still there.
        assert ended.state is TaskState.FAILED and ended.attempt == 2
        assert "in maintenance but not empty" in (ended.error or "")
        assert "rs-evac: no host can take VM rs-evac" in (ended.error or ""), ended.error
        assert _host(api)["maintenance"] is True
    finally:
        api.client.put(f"/api/v1/hosts/{HOST}/maintenance", json={"enabled": False}, headers=h)
        api.client.post("/api/v1/vms/rs-evac/stop", json={"force": True}, headers=h)
        api.client.delete("/api/v1/vms/rs-evac", headers=h)


def _running_phase(api: Api, task_id: str, wanted: Callable[[str], bool], attempt: int = 2) -> None:
    def seen() -> bool:
        task = api.services.db.sync(lambda s: store.get_task(s, task_id))
        return task.state is TaskState.RUNNING and task.attempt == attempt and wanted(task.phase)

    wait_until(seen, 20, f"task {task_id} to be resumed", interval=0.1)


def test_a_shutdown_leaves_power_work_to_its_resumer_and_stops_the_rest_saying_so(
    api: Api,
) -> None:
    """The instance shutting down (its tasks' bodies cancelled, as ``corral serve`` stopping
    does): a power-on survives, its lease given up, and is taken over (here by this very
    instance's claim) and resolved; a clone is stopped, not called a user's cancel."""
    services = api.services
    _recorded_standby(api, True)

    # The power-on's body says it survives a restart as soon as it runs; the shutdown waits
    # for that (under load it came first, and the power-on was stopped like the clone).
    survives = threading.Event()

    async def start(kind: str, target: str) -> TaskInfo:
        async def forever(ctx: TaskContext) -> dict[str, Any]:
            if kind == "host.power_on":
                ctx.survives_restart = True
                survives.set()
            await asyncio.Event().wait()
            return {}

        return await services.tasks.start(kind, target, SYSTEM, forever)

    assert api.client.portal is not None
    waking = api.client.portal.call(start, "host.power_on", HOST)
    cloning = api.client.portal.call(start, "vm.clone", "rs-clone")
    _running_phase(api, cloning.id, lambda _: True, attempt=1)
    assert survives.wait(20), "the power-on's body never ran"
    api.client.portal.call(services.tasks.shutdown)
    stopped = _finished(api, cloning.id)
    _claim(api)
    assert stopped.state is TaskState.CANCELLED and stopped.error == SHUT_DOWN
    woken = _finished(api, waking.id)
    assert woken.state is TaskState.SUCCEEDED and woken.attempt == 2, woken.error
    assert woken.result == {"host": HOST, "standby": False, "resumed": True}


def test_no_task_stays_running_without_a_resumer_or_with_a_broken_one(api: Api) -> None:
    async def broken(task: TaskInfo) -> None:
        raise KeyError("params")  # a resumer's bug: before, claimed again every few seconds

    api.services.tasks.register_resumer("rs.broken", broken)
    unknown = _finished(api, _left_by_dead(api, "rs.unknown", "rs-x"))
    assert unknown.state is TaskState.FAILED
    assert "a rs.unknown task cannot be resumed: check rs-x" in (unknown.error or "")
    failed = _finished(api, _left_by_dead(api, "rs.broken", "rs-y"))
    assert failed.state is TaskState.FAILED and failed.attempt == 2
    assert "could not be resumed: internal error: 'params'" in (failed.error or "")
