"""A kernel-boot TCG guest driven through the REST API, from create to delete."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import libvirt
import pytest
from PIL import Image
from websockets.sync.client import connect as ws_connect

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_images import KernelGuest
from tests.integration.api._support import kernel_vm, wait_log, wait_state, wait_task

NAME = "api-life"


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


@pytest.fixture(scope="module")
def running_vm(client: httpx.Client, kernel_guest: KernelGuest) -> Iterator[str]:
    answer = client.post("/vms", json=kernel_vm(NAME, kernel_guest, description="<api & test>"))
    assert answer.status_code == 201, answer.text
    assert answer.json()["state"] == "shutoff"
    assert answer.json()["accelerator"] == "tcg"
    started = client.post(f"/vms/{NAME}/start")
    assert started.status_code == 200, started.text
    assert started.json()["state"] == "running"
    wait_log(client, NAME, rb"corral-heartbeat \d+")
    yield NAME
    client.post(f"/vms/{NAME}/stop")
    client.delete(f"/vms/{NAME}", params={"delete_disks": "true"})


def test_show_reports_live_state(client: httpx.Client, running_vm: str) -> None:
    vm = client.get(f"/vms/{running_vm}").json()
    assert vm["state"] == "running"
    assert vm["vcpus"] == 1 and vm["memory_mib"] == 256
    assert vm["uptime_s"] is None or vm["uptime_s"] >= 0
    assert vm["cpu_time_s"] > 0
    assert vm["description"] == "<api & test>"
    assert any(d["device"] == "disk" for d in vm["disks"])
    listed = {v["name"]: v for v in client.get("/vms").json()["items"]}
    assert listed[running_vm]["state"] == "running"


def test_pause_and_resume(client: httpx.Client, running_vm: str) -> None:
    assert client.post(f"/vms/{running_vm}/pause").json()["state"] == "paused"
    again = client.post(f"/vms/{running_vm}/pause")
    assert again.status_code == 409 and "only a running VM" in again.json()["detail"]
    assert client.post(f"/vms/{running_vm}/resume").json()["state"] == "running"
    # The guest really runs again: a new heartbeat appears after the resume.
    size = len(client.get(f"/vms/{running_vm}/log").content)
    wait_log(client, running_vm, rb"corral-heartbeat \d+", start=size)


def test_screenshot_is_a_png_of_the_console(client: httpx.Client, running_vm: str) -> None:
    answer = client.get(f"/vms/{running_vm}/screenshot")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(answer.content))
    assert image.width >= 320 and image.height >= 200
    darkest, brightest = image.convert("L").getextrema()
    assert darkest != brightest, "the screen is blank"


def test_serial_console_over_websocket(corral: CorralServer, running_vm: str) -> None:
    url = corral.url.replace("http", "ws") + f"/api/v1/vms/{running_vm}/serial"
    with ws_connect(url, additional_headers={"Authorization": f"Bearer {corral.token}"}) as ws:
        ws.send(b"\necho corral-$((6*7))-ok\n")
        seen = b""
        while b"corral-42-ok" not in seen:
            data = ws.recv(timeout=30)
            seen += data if isinstance(data, bytes) else data.encode()
    assert b"corral-42-ok" in seen


def test_serial_console_refuses_bad_token(corral: CorralServer, running_vm: str) -> None:
    url = corral.url.replace("http", "ws") + f"/api/v1/vms/{running_vm}/serial"
    bad = {"Authorization": "Bearer crl_wrong"}
    with pytest.raises(Exception) as caught, ws_connect(url, additional_headers=bad) as ws:
        ws.recv(timeout=10)
    assert "HTTP 401" in str(caught.value)


def test_snapshots(client: httpx.Client, running_vm: str) -> None:
    made = client.post(f"/vms/{running_vm}/snapshots", json={"name": "s1", "description": "x"})
    assert made.status_code == 201, made.text
    names = [s["name"] for s in client.get(f"/vms/{running_vm}/snapshots").json()["items"]]
    assert names == ["s1"]
    dup = client.post(f"/vms/{running_vm}/snapshots", json={"name": "s1"})
    assert dup.status_code == 409
    # Corral's sentence, not libvirt's "domain moment s1 already exists".
    assert dup.json()["detail"] == (
        f"VM {running_vm!r} already has a snapshot named 's1': choose another name, "
        f"or delete it first (`corral vm snapshot delete {running_vm} s1`)"
    )
    reverted = client.post(f"/vms/{running_vm}/snapshots/s1/revert")
    assert reverted.status_code == 200, reverted.text
    assert reverted.json()["state"] == "running"
    assert client.delete(f"/vms/{running_vm}/snapshots/s1").status_code == 204
    assert client.get(f"/vms/{running_vm}/snapshots").json()["items"] == []
    missing = client.delete(f"/vms/{running_vm}/snapshots/nope")
    assert missing.status_code == 404


def test_a_vm_without_a_qcow2_disk_cannot_have_snapshots(
    client: httpx.Client, kernel_guest: KernelGuest
) -> None:
    name = "api-nosnap"
    made = client.post("/vms", json=kernel_vm(name, kernel_guest, disk_gib=None))
    assert made.status_code == 201, made.text
    try:
        answer = client.post(f"/vms/{name}/snapshots", json={"name": "s1"})
        assert answer.status_code == 409, answer.text
        assert "snapshots are stored inside qcow2 disk images" in answer.json()["detail"]
        assert client.get(f"/vms/{name}/snapshots").json()["items"] == []
    finally:
        assert client.delete(f"/vms/{name}").status_code == 204


def test_reboot_boots_again(client: httpx.Client, running_vm: str) -> None:
    size = len(client.get(f"/vms/{running_vm}/log").content)
    assert client.post(f"/vms/{running_vm}/reboot").status_code == 200
    wait_log(client, running_vm, rb"CORRAL-GUEST-BOOTED", start=size)


def test_delete_refuses_a_running_vm(client: httpx.Client, running_vm: str) -> None:
    answer = client.delete(f"/vms/{running_vm}")
    assert answer.status_code == 409
    assert "shut it down" in answer.json()["detail"]


def test_graceful_shutdown_then_delete_with_disks(
    client: httpx.Client, kernel_guest: KernelGuest, conn: libvirt.virConnect
) -> None:
    name = "api-shutdown"
    assert client.post("/vms", json=kernel_vm(name, kernel_guest)).status_code == 201
    client.post(f"/vms/{name}/start")
    wait_log(client, name, rb"corral-heartbeat \d+")
    answer = client.post(f"/vms/{name}/shutdown", json={"timeout_s": 60})
    assert answer.status_code == 202
    assert answer.headers["location"] == f"/api/v1/tasks/{answer.json()['id']}"
    task = wait_task(client, answer.json()["id"])
    assert task["state"] == "succeeded", task
    assert task["result"] == {"vm": name, "forced": False}
    assert client.get(f"/vms/{name}").json()["state"] == "shutoff"
    volumes = [v["path"] for v in client.get(f"/vms/{name}").json()["disks"]]
    assert client.delete(f"/vms/{name}", params={"delete_disks": "true"}).status_code == 204
    assert client.get(f"/vms/{name}").status_code == 404
    assert name not in [d.name() for d in conn.listAllDomains()]
    pool = conn.storagePoolLookupByName("corral")
    pool.refresh()
    remaining = {pool.storageVolLookupByName(v).path() for v in pool.listVolumes()}
    assert not set(volumes) & remaining
    assert f"{name}.serial.log" not in pool.listVolumes()


def test_shutdown_timeout_is_a_clear_error_then_force(
    client: httpx.Client, kernel_guest: KernelGuest
) -> None:
    name = "api-stubborn"
    spec = kernel_vm(name, kernel_guest, disk_gib=None)
    # With ACPI off in the guest kernel, the power button goes unheard: the shutdown must time out.
    spec["boot"]["cmdline"] += " acpi=off"
    assert client.post("/vms", json=spec).status_code == 201
    client.post(f"/vms/{name}/start")
    wait_log(client, name, rb"corral-heartbeat \d+")
    task = wait_task(
        client, client.post(f"/vms/{name}/shutdown", json={"timeout_s": 2}).json()["id"]
    )
    assert task["state"] == "failed"
    assert "did not shut down within 2 s" in task["error"] and "--force" in task["error"]
    assert client.get(f"/vms/{name}").json()["state"] == "running"
    forced = wait_task(
        client,
        client.post(f"/vms/{name}/shutdown", json={"timeout_s": 1, "force": True}).json()["id"],
    )
    assert forced["state"] == "succeeded" and forced["result"]["forced"] is True
    wait_state(client, name, "shutoff")
    audit = client.get("/audit", params={"action": "vm.shutdown"}).json()["items"]
    assert any(e["target"] == name and e["outcome"].startswith("error:") for e in audit)
    assert client.delete(f"/vms/{name}").status_code == 204
