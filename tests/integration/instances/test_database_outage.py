"""A database that goes away, with real ``corral serve`` instances A and B on one PostgreSQL
database, each through a forwarder the test cuts (the suite's PostgreSQL itself keeps serving
the other tests).

While it is away, requests answer 503 with a problem naming the database (never a traceback or
the URL's password) and ``Retry-After``, and ``/healthz`` says unhealthy. Everyone loses it:
A's tasks, their leases lapsed, go on under A once it is back (first attempt, once), and the
event listener listens again. Only A loses it: B takes A's task over once its lease lapsed,
A's body waits instead of acting and stops once it learns, and the task is finished once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url, text

from corral.store import Store
from corral.store.events import append_events
from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.private_libvirtd import PrivateLibvirtd
from tests.conftest import GUEST_BUILD_DIR
from tests.integration.api._support import kernel_vm, wait_task
from tests.postgres import PgAdmin, fresh_pg_database
from tests.tcp_forwarder import CuttableForwarder, forwarding

pytestmark = pytest.mark.postgres

#: The metric of transactions refused while the database was away.
REFUSED = "corral_database_unavailable_total"
#: Longer than a task's lease (4 s): the leases lapse while the database is away.
OUTAGE_S = 5.0


@dataclass
class Pair:
    a: CorralServer
    b: CorralServer
    to_a: CuttableForwarder  # A's way to the database
    to_b: CuttableForwarder
    url: str  # the database, directly

    @property
    def password(self) -> str:
        return make_url(self.url).password or ""


@pytest.fixture(scope="module")
def pair(
    private_libvirtd: PrivateLibvirtd, pg_admin: PgAdmin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    """One database, one data directory (the same CA and keys), A's admin token for both."""
    base = tmp_path_factory.mktemp("outage")
    url = next(databases := fresh_pg_database(pg_admin))
    direct = make_url(url)
    upstream = (direct.host or "127.0.0.1", direct.port or 5432)
    with forwarding(*upstream) as to_a, forwarding(*upstream) as to_b:
        servers = []
        for name, forwarder in (("a", to_a), ("b", to_b)):
            via = direct.set(host="127.0.0.1", port=forwarder.port)
            env = {
                "CORRAL_DATABASE_URL": via.render_as_string(hide_password=False),
                "CORRAL_RECONCILE_INTERVAL_S": "3600",
                **({"CORRAL_DATA_DIR": servers[0].env["CORRAL_DATA_DIR"]} if servers else {}),
            }
            roots = [GUEST_BUILD_DIR]
            servers.append(
                CorralServer(
                    base / name, private_libvirtd.uri, extra_env=env, host_path_roots=roots
                )
            )
        a, b = servers
        try:
            a.start()
            b.token = a.token
            b.start()
            yield Pair(a, b, to_a, to_b, url)
        finally:
            a.stop()
            b.stop()
            next(databases, None)  # drops it


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
    # Past its start (the VM locked, the guest asked): what follows needs no database. (A
    # short one may be forcing already when a loaded machine lets this look.)
    wait_until(
        lambda: _task(client, task_id)["phase"] != "asking the guest",
        30,
        f"task {task_id} to wait for its guest",
        interval=0.05,
    )
    return task_id


def _task(client: httpx.Client, task_id: str) -> dict[str, Any]:
    task: dict[str, Any] = client.get(f"/tasks/{task_id}").json()
    return task


def _healthy(server: CorralServer) -> bool:
    return httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


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


def _lease_held(url: str, task_id: str) -> bool:
    store = Store.from_url(url, migrate=False)
    try:
        with store.session() as session:
            query = text("SELECT lease_expires_at > now() FROM tasks WHERE id = :id")
            return bool(session.execute(query, {"id": task_id}).scalar())
    finally:
        store.dispose()


def _shutdown_outcomes(client: httpx.Client, vm: str) -> list[str]:
    audit = client.get("/audit", params={"action": "vm.shutdown", "limit": 100}).json()
    return [e["outcome"] for e in audit["items"] if e["target"] == vm]


def test_requests_answer_503_and_tasks_go_on_once_the_database_is_back(
    pair: Pair, kernel_guest: KernelGuest
) -> None:
    a, b = pair.a, pair.b
    with a.client() as client:
        _deaf_vm(client, "od-short", kernel_guest)
        _deaf_vm(client, "od-long", kernel_guest)
        # One would force its VM off while the database is away, one after it is back.
        short, long = _shutdown(client, "od-short", 2), _shutdown(client, "od-long", 8)
        owner = _task(client, long)["owner"]

        pair.to_a.cut()
        pair.to_b.cut()
        cut = time.monotonic()
        answers = _answers_while_away(a, pair.password)
        problem = answers["list"].json()
        assert answers["list"].headers["content-type"] == "application/problem+json"
        assert problem["title"] == "Database unavailable", problem
        assert "database is unreachable" in problem["detail"], problem
        assert answers["health"].json()["status"] == "unhealthy"
        listed = a.cli("vm", "list", timeout=30)
        assert listed.returncode != 0 and "database is unreachable" in listed.stderr, listed
        while time.monotonic() - cut < OUTAGE_S:  # polled, not slept: it must stay 503
            _answers_while_away(a, pair.password)
            _answers_while_away(b, pair.password)
        # A first, until it renewed its leases: else B might claim the lapsed ones first (a
        # clean takeover too: the next test).
        pair.to_a.restore()
        back = time.monotonic()
        wait_until(lambda: _healthy(a), 20, "A's /healthz to be 200 again", interval=0.1)
        print(f"healthy again {time.monotonic() - back:.2f} s after the database came back")
        wait_until(lambda: _lease_held(pair.url, long), 20, "A to renew its leases")
        pair.to_b.restore()

        for task_id, vm in ((short, "od-short"), (long, "od-long")):
            task = wait_task(client, task_id, timeout=30)
            assert (task["state"], task["error"]) == ("succeeded", None), task
            assert task["result"] == {"vm": vm, "forced": True}, task
            assert task["attempt"] == 1 and task["owner"] == owner, task
            # Once each: the request and the task's outcome.
            assert _shutdown_outcomes(client, vm) == ["ok", "ok"]
        _event_listener_listens(a, pair.url)
        metrics = client.get(f"{a.url}/metrics").text
        refused = next(line for line in metrics.splitlines() if line.startswith(REFUSED))
        assert float(refused.split()[1]) > 0, refused
        wait_until(lambda: _healthy(b), 20, "B's /healthz to be 200 again", interval=0.1)
        for vm in ("od-short", "od-long"):
            assert client.delete(f"/vms/{vm}").status_code in (200, 204)
    for server in (a, b):
        log = server.log_path.read_text(errors="replace")
        assert pair.password not in log
        assert "Exception in ASGI application" not in log
        assert "Task exception was never retrieved" not in log


def _event_listener_listens(server: CorralServer, url: str) -> None:
    """An event another instance writes (here: the test, straight into the database) reaches
    this instance's SSE clients: its LISTEN connection is back."""
    store = Store.from_url(url, migrate=False)
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


def test_a_task_of_an_instance_cut_off_is_taken_over_once(
    pair: Pair, kernel_guest: KernelGuest
) -> None:
    """Only A loses the database: B takes A's task over once its lease lapsed and finishes
    it; A's body waits at its next progress report instead of acting (it cannot know), and
    once A reaches the database again it finds the task taken and stops without a write."""
    a, b = pair.a, pair.b
    with a.client() as on_a, b.client() as on_b:
        _deaf_vm(on_a, "od-taken", kernel_guest)
        task_id = _shutdown(on_a, "od-taken", 6)
        owner_a = _task(on_b, task_id)["owner"]

        pair.to_a.cut()
        cut = time.monotonic()
        assert on_a.get("/vms").status_code == 503
        assert _healthy(b)
        wait_until(lambda: _task(on_b, task_id)["owner"] != owner_a, 15, "B to take the task over")
        print(f"taken over {time.monotonic() - cut:.2f} s after A lost the database")
        pair.to_a.restore()

        task = wait_task(on_b, task_id, timeout=30)
        assert (task["state"], task["error"]) == ("succeeded", None), task
        assert task["result"] == {"vm": "od-taken", "forced": True, "resumed": True}, task
        assert task["attempt"] == 2 and task["owner"] != owner_a, task
        wait_until(
            lambda: f"task {task_id} taken over" in a.log_path.read_text(errors="replace"),
            15,
            "A to find its task taken over",
            interval=0.1,
        )
        # The request (through A) and one outcome (B's), not A's as well.
        assert _shutdown_outcomes(on_b, "od-taken") == ["ok", "ok"]
        wait_until(lambda: _healthy(a), 20, "A's /healthz to be 200 again", interval=0.1)
        assert on_b.delete("/vms/od-taken").status_code in (200, 204)
