"""A database that goes away: a real ``corral serve`` on PostgreSQL through a forwarder the
test cuts (the suite's PostgreSQL itself keeps serving the other tests).

While it is away, requests answer 503 with a problem naming the database (never a traceback or
the URL's password) and ``Retry-After``, ``/healthz`` says unhealthy; two tasks run through it,
one ending while the database is away, one after it is back: both finish once, under their
first attempt (their leases lapsed, nobody took them, the owner renewed them), and the event
listener is listening again."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url

from corral.store import Store
from corral.store.events import append_events
from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.private_libvirtd import PrivateLibvirtd
from tests.conftest import GUEST_BUILD_DIR
from tests.integration.api._support import kernel_vm, wait_task
from tests.tcp_forwarder import CuttableForwarder, forwarding

pytestmark = pytest.mark.postgres

#: Longer than a task's lease (4 s): the leases lapse while the database is away.
OUTAGE_S = 4.5


@pytest.fixture
def outage(
    private_libvirtd: PrivateLibvirtd, pg_url: str, tmp_path: Path
) -> Iterator[tuple[CorralServer, CuttableForwarder]]:
    direct = make_url(pg_url)
    with forwarding(direct.host or "127.0.0.1", direct.port or 5432) as forwarder:
        via = direct.set(host="127.0.0.1", port=forwarder.port)
        env = {
            "CORRAL_DATABASE_URL": via.render_as_string(hide_password=False),
            "CORRAL_RECONCILE_INTERVAL_S": "3600",
        }
        server = CorralServer(
            tmp_path / "a", private_libvirtd.uri, extra_env=env, host_path_roots=[GUEST_BUILD_DIR]
        )
        try:
            server.start()
            yield server, forwarder
        finally:
            server.stop()


def _deaf_vm(client: httpx.Client, name: str, guest: KernelGuest) -> None:
    # acpi=off: the guest ignores the power button, so a graceful shutdown waits it out.
    spec = kernel_vm(name, guest, disk_gib=None)
    spec["boot"]["cmdline"] += " acpi=off"
    made = client.post("/vms", json=spec)
    assert made.status_code == 201, made.text
    assert client.post(f"/vms/{name}/start").status_code == 200


def _shutdown(client: httpx.Client, name: str, timeout_s: float) -> str:
    answer = client.post(f"/vms/{name}/shutdown", json={"timeout_s": timeout_s, "force": True})
    assert answer.status_code == 202, answer.text
    task_id: str = answer.json()["id"]
    return task_id


def _task(client: httpx.Client, task_id: str) -> dict[str, Any]:
    task: dict[str, Any] = client.get(f"/tasks/{task_id}").json()
    return task


def _answers_while_away(server: CorralServer, password: str) -> dict[str, httpx.Response]:
    with server.client() as client:
        answers = {
            "list": client.get("/vms"),
            "create": client.post("/vms", json={"name": "od-never", "memory_mib": 64}),
            "health": httpx.get(f"{server.url}/healthz", timeout=10),
        }
    for what, answer in answers.items():
        assert answer.status_code == 503, (what, answer.text)
        assert answer.headers["retry-after"] == "5", what
        assert password not in answer.text and "Traceback" not in answer.text
    return answers


def test_requests_answer_503_and_tasks_go_on_once_the_database_is_back(
    outage: tuple[CorralServer, CuttableForwarder], kernel_guest: KernelGuest, pg_url: str
) -> None:
    server, forwarder = outage
    password = make_url(pg_url).password or ""
    assert password
    with server.client() as client:
        _deaf_vm(client, "od-short", kernel_guest)
        _deaf_vm(client, "od-long", kernel_guest)
        # One ends (forced) while the database is away, one after it is back.
        short, long = _shutdown(client, "od-short", 2), _shutdown(client, "od-long", 8)
        for task_id in (short, long):  # past its start (lock taken, guest asked)
            wait_until(
                lambda t=task_id: _task(client, t)["phase"].startswith("waiting"),
                30,
                f"task {task_id} to wait for its guest",
                interval=0.05,
            )
        owner = _task(client, long)["owner"]

        forwarder.cut()
        cut = time.monotonic()
        answers = _answers_while_away(server, password)
        problem = answers["list"].json()
        assert answers["list"].headers["content-type"] == "application/problem+json"
        assert problem["title"] == "Database unavailable", problem
        assert "database is unreachable" in problem["detail"], problem
        assert answers["health"].json()["status"] == "unhealthy"
        while time.monotonic() - cut < OUTAGE_S:  # polled, not slept: it must stay 503
            _answers_while_away(server, password)
        forwarder.restore()
        back = time.monotonic()
        wait_until(
            lambda: httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200,
            20,
            "/healthz to be 200 again",
            interval=0.1,
        )
        print(f"healthy again {time.monotonic() - back:.2f} s after the database came back")

        for task_id, vm in ((short, "od-short"), (long, "od-long")):
            task = wait_task(client, task_id, timeout=30)
            assert (task["state"], task["error"]) == ("succeeded", None), task
            assert task["result"] == {"vm": vm, "forced": True}, task
            assert task["attempt"] == 1 and task["owner"] == owner, task
        audit = client.get("/audit", params={"action": "vm.shutdown", "limit": 100}).json()
        outcomes = [(e["target"], e["outcome"]) for e in audit["items"]]
        # Once each: the request and the task's outcome.
        assert sorted(outcomes) == sorted([(vm, "ok") for vm in ("od-short", "od-long")] * 2)
        _event_listener_listens(server, pg_url)
        for vm in ("od-short", "od-long"):
            assert client.delete(f"/vms/{vm}").status_code in (200, 204)
    log = server.log_path.read_text(errors="replace")
    assert password not in log
    assert "Exception in ASGI application" not in log


def _event_listener_listens(server: CorralServer, pg_url: str) -> None:
    """An event another instance writes (here: the test, straight into the database) reaches
    this instance's SSE clients: its LISTEN connection is back."""
    store = Store.from_url(pg_url, migrate=False)
    headers = {"Authorization": f"Bearer {server.token}"}
    try:
        with httpx.stream(
            "GET", f"{server.url}/api/v1/events", headers=headers, timeout=10
        ) as stream:
            assert stream.status_code == 200
            marker: dict[str, Any] = {"name": "od-probe", "state": "running"}
            with store.session() as session:
                append_events(session, "outage-test", [("vm", "updated", marker)])
            for line in stream.iter_lines():
                if line.startswith("data:") and json.loads(line[5:])["name"] == "od-probe":
                    return
    finally:
        store.dispose()
