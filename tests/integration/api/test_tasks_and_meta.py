"""Task cancellation, and the edges: health and OpenAPI without a token, metrics with one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import libvirt
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from tests.integration.api._support import kernel_vm, wait_task


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


def test_cancelled_import_leaves_nothing(
    client: httpx.Client, conn: libvirt.virConnect, tmp_path: Path
) -> None:
    image = tmp_path / "big.raw"
    with image.open("wb") as handle:
        handle.truncate(3 * 1024**3)  # sparse: cheap to make, slow enough to stream
    pool = conn.storagePoolLookupByName("corral")
    pool.refresh()
    before = set(pool.listVolumes())
    spec = {"name": "cancel-me", "memory_mib": 64, "disks": [{"import_path": str(image)}]}
    answer = client.post("/vms", json=spec)
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["id"]
    cancelled = client.post(f"/tasks/{task_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    task = wait_task(client, task_id)
    assert task["state"] == "cancelled", task
    pool.refresh()
    assert set(pool.listVolumes()) == before
    assert client.get("/vms/cancel-me").status_code == 404
    assert "cancel-me" not in [d.name() for d in conn.listAllDomains()]
    again = client.post(f"/tasks/{task_id}/cancel")
    assert again.status_code == 409 and "already finished" in again.json()["detail"]


def test_a_crash_mid_import_is_resolved_at_the_next_start(
    client: httpx.Client, corral: CorralServer, conn: libvirt.virConnect, tmp_path: Path
) -> None:
    image = tmp_path / "big.raw"
    with image.open("wb") as handle:
        handle.truncate(4 * 1024**3)
    pool = conn.storagePoolLookupByName("corral")
    pool.refresh()
    before = set(pool.listVolumes())
    spec = {"name": "crash-me", "memory_mib": 64, "disks": [{"import_path": str(image)}]}
    task_id = client.post("/vms", json=spec).json()["id"]
    wait_until(
        lambda: (client.get(f"/tasks/{task_id}").json().get("bytes_done") or 0) > 0,
        30,
        "the import to make progress",
        interval=0.05,
    )
    corral.kill()
    pool.refresh()
    assert set(pool.listVolumes()) != before  # the crash left a partial volume behind
    corral.start()
    with corral.client() as fresh:
        task = fresh.get(f"/tasks/{task_id}").json()
        assert task["state"] == "failed"
        assert "interrupted by a restart" in task["error"]
        assert fresh.get("/vms/crash-me").status_code == 404
    pool.refresh()
    assert set(pool.listVolumes()) == before


def test_health_and_openapi_need_no_token_metrics_do(
    corral: CorralServer, client: httpx.Client, kernel_guest: KernelGuest
) -> None:
    assert client.post("/vms", json=kernel_vm("metered", kernel_guest, disk_gib=None)).is_success
    client.post("/vms/metered/start")
    try:
        assert httpx.get(f"{corral.url}/healthz").json() == {"status": "ok", "state": "ready"}
        anonymous = httpx.get(f"{corral.url}/metrics")
        assert anonymous.status_code == 401
        assert "corral_vms" not in anonymous.text

        def running_vms() -> str | None:
            text = httpx.get(f"{corral.url}/metrics", headers=client.headers).text
            line = next(
                (x for x in text.splitlines() if x.startswith('corral_vms{state="running"}')), ""
            )
            return text if line and float(line.split()[-1]) >= 1 else None

        # Refreshed in the background every second here (CORRAL_METRICS_INTERVAL_S).
        metrics = wait_until(running_vms, 10, "a running VM in /metrics")
        assert "corral_api_request_seconds_bucket" in metrics
        assert "corral_hosts_connected 1.0" in metrics
        schema = httpx.get(f"{corral.url}/openapi.json").json()
        assert "/api/v1/vms/{name}/shutdown" in schema["paths"]
        assert "HTTPBearer" in schema["components"]["securitySchemes"]
    finally:
        client.post("/vms/metered/stop")
        client.delete("/vms/metered")
