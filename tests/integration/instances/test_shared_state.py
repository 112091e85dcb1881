"""Two real ``corral serve`` processes on one PostgreSQL database (and one libvirtd): a console
ticket issued through one opens the VM's screen through the other, once; the other's event
stream carries the first one's events, and a client reconnecting to either with
``Last-Event-ID`` is given what it missed. (An instance without the cluster's keys, or with
keys of its own: tests/unit/cli/test_cli_admin_secrets.py.)"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from corral.rfb import RFBClient
from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_images import KernelGuest
from corral.testbed.private_libvirtd import PrivateLibvirtd
from corral.testbed.vm_specs import kernel_vm
from tests.integration.api._support import wait_state
from tests.postgres import PgAdmin, fresh_pg_database

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

NAME = "two-instances"
QUIET = {"CORRAL_RECONCILE_INTERVAL_S": "3600", "CORRAL_METRICS_INTERVAL_S": "3600"}


@pytest.fixture(scope="module")
def instances(
    private_libvirtd: PrivateLibvirtd,
    tmp_path_factory: pytest.TempPathFactory,
    pg_admin: PgAdmin,
    kernel_guest: KernelGuest,
) -> Iterator[tuple[CorralServer, CorralServer]]:
    """A (started) and B (to start): one database, one data directory (the cluster's keys),
    each its own port."""
    databases = fresh_pg_database(pg_admin)
    url = next(databases)
    base = tmp_path_factory.mktemp("instances")
    env = {**QUIET, "CORRAL_DATABASE_URL": url}
    roots = [kernel_guest.kernel.parent]
    a = CorralServer(base / "a", private_libvirtd.uri, extra_env=env, host_path_roots=roots)
    b = CorralServer(base / "b", private_libvirtd.uri, extra_env=env, host_path_roots=roots)
    try:
        a.start()
        b.env["CORRAL_DATA_DIR"] = a.env["CORRAL_DATA_DIR"]
        b.token = a.token  # one database: one admin, one token
        yield a, b
    finally:
        b.stop()
        a.stop()
        next(databases, None)


class Stream:
    """An SSE stream, read line by line with a deadline."""

    def __init__(self, server: CorralServer, last_event_id: int | None = None) -> None:
        headers = {"Authorization": f"Bearer {server.token}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self._client = httpx.Client(base_url=server.url, headers=headers, timeout=30)
        self._response = self._client.send(
            self._client.build_request("GET", "/api/v1/events"), stream=True
        )
        assert self._response.status_code == 200
        self._lines = self._response.iter_lines()
        assert next(self._lines) == ": corral events"  # subscribed from here on
        self.seen: list[dict[str, Any]] = []

    def next_event(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        fields: dict[str, Any] = {}
        for line in self._lines:
            if time.monotonic() > deadline:
                break
            if line.startswith(":"):
                continue
            if not line:
                if "event" in fields:
                    self.seen.append(fields)
                    return fields
                continue
            key, _, value = line.partition(": ")
            fields[key] = json.loads(value) if key == "data" else value
        raise AssertionError(f"no event in time; seen: {self.seen}")

    def until(self, wanted: Any, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(max(1.0, deadline - time.monotonic()))
            if wanted(event):
                return event

    def close(self) -> None:
        self._response.close()
        self._client.close()


def _is_shutdown_task(event: dict[str, Any]) -> bool:
    data = event["data"]
    return event["event"] == "task" and data["target"] == NAME and data["kind"] == "vm.shutdown"


def test_two_instances_share_events_and_console_tickets(
    instances: tuple[CorralServer, CorralServer], kernel_guest: KernelGuest
) -> None:
    a, b = instances
    with a.client() as client:
        made = client.post("/vms", json=kernel_vm(NAME, kernel_guest, disk_gib=None, start=True))
        assert made.status_code in (201, 202), made.text
        wait_state(client, NAME, "running")
        # B starts once the VM is made: until the per-host reconciler runs once in the
        # cluster, two instances seeing a new domain at once may both record it.
        b.start()
        # A console ticket issued through A opens the VM's screen through B, once.
        ticket = client.post(f"/vms/{NAME}/console/ticket", json={"kind": "vnc"}).json()
    headers = {"Authorization": f"Bearer {b.token}"}
    shape = asyncio.run(_screen_shape(b.url.replace("http", "ws", 1) + ticket["url"], headers))
    assert shape[0] > 0 and shape[1] > 0
    for server in (b, a):
        again = server.url.replace("http", "ws", 1) + ticket["url"]
        with pytest.raises(InvalidStatus) as refused, ws_connect(again, additional_headers=headers):
            pass
        assert refused.value.response.status_code == 403
        assert b"already used" in refused.value.response.body

    # Only A runs the shutdown task: its progress reaches B's stream, with an id.
    on_b = Stream(b)
    try:
        with a.client() as client:
            asked = client.post(f"/vms/{NAME}/shutdown", json={"timeout_s": 1, "force": True})
            assert asked.status_code == 202, asked.text
        seen = on_b.until(_is_shutdown_task)
        first_id = int(seen["id"])
    finally:
        on_b.close()
    # A client that was on B reconnects to A, naming the last event it had before: A replays
    # from there (the log is in the database); one from too long ago is told to reload.
    resumed = Stream(a, last_event_id=first_id - 1)
    try:
        assert int(resumed.next_event()["id"]) == first_id
    finally:
        resumed.close()
    stale = Stream(a, last_event_id=first_id + 10**9)
    try:
        assert stale.next_event()["event"] == "reload"
    finally:
        stale.close()
    with a.client() as client:
        client.post(f"/vms/{NAME}/stop", params={"force": True})
        client.delete(f"/vms/{NAME}")


async def _screen_shape(url: str, headers: dict[str, str]) -> tuple[int, ...]:
    async with await RFBClient.connect_websocket(url, headers=headers) as vnc:
        shot = await vnc.screenshot(timeout=30)
        return tuple(shot.shape[:2])
