"""``corral vm move-disk`` with a real TCG guest on the suite's private libvirtd: the guest
writes its disk continuously while the disk moves live from ``local`` to a ``shared-dir``
domain; every record survives a cold restart on the new volume, and the definition names it.
Then, shut off, the disk moves back by volume copy (keeping the source), the refusals that
need a real domain (no room) make nothing, and a cancelled live move leaves the VM on its disk
and no new volume."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import libvirt
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.private_libvirtd import PrivateLibvirtd
from tests.integration.api._support import SerialShell, kernel_vm, wait_log, wait_task
from tests.integration.storage._disk_writer import (
    disk_path,
    records_on_disk,
    records_written,
    restart,
    start,
    start_writer,
    stop_writer,
)

pytestmark = pytest.mark.integration
VM = "mover"


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


@pytest.fixture(scope="module")
def shared(client: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A ``shared-dir`` domain ``md-shared`` (the private libvirtd is its only host)."""
    path = tmp_path_factory.mktemp("md-shared")
    made = client.post(
        "/storage-domains", json={"kind": "shared-dir", "name": "md-shared", "path": str(path)}
    )
    assert made.status_code == 201, made.text
    yield path
    client.post(f"/vms/{VM}/stop")
    client.delete(f"/vms/{VM}", params={"delete_disks": "true"})
    for volume in client.get("/storage-domains/md-shared/volumes").json()["items"]:
        client.delete(f"/storage-domains/md-shared/volumes/{volume['name']}")
    client.delete("/storage-domains/md-shared")


def _move(client: httpx.Client, body: dict[str, Any], disk: str = "vda") -> httpx.Response:
    return client.post(f"/vms/{VM}/disks/{disk}/move", json=body)


class Domain:
    """The VM's libvirt domain, through a fresh connection per look (a connection left idle
    while a move runs is closed by libvirtd's keepalive: nothing here answers its probes)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def _look(self, fn: Callable[[libvirt.virDomain], Any]) -> Any:
        conn = libvirt.open(self.uri)
        try:
            return fn(conn.lookupByName(VM))
        finally:
            conn.close()

    def xml(self, flags: int = 0) -> str:
        return str(self._look(lambda d: d.XMLDesc(flags)))

    def job(self) -> Any:
        return self._look(lambda d: d.blockJobInfo("vda", 0))


@pytest.fixture
def conn(private_libvirtd: PrivateLibvirtd) -> Domain:
    return Domain(private_libvirtd.uri)


def _persistent_disk(conn: Domain) -> str:
    xml = conn.xml(libvirt.VIR_DOMAIN_XML_INACTIVE)
    return xml.split("<source file='")[1].split("'")[0]


def test_a_running_guest_keeps_writing_while_its_disk_moves_to_shared_dir(
    corral: CorralServer,
    client: httpx.Client,
    conn: Domain,
    kernel_guest: KernelGuest,
    shared: Path,
    private_libvirtd: PrivateLibvirtd,
) -> None:
    made = client.post("/vms", json=kernel_vm(VM, kernel_guest, disk_gib=0.25))
    assert made.status_code == 201, made.text
    assert client.post(f"/vms/{VM}/start").status_code == 200
    wait_log(client, VM, rb"CORRAL-GUEST-BOOTED")
    old = disk_path(client, VM)
    shell = SerialShell(corral, VM)
    start_writer(shell)
    before = records_written(shell)

    answer = _move(client, {"to": "md-shared"})
    assert answer.status_code == 202, answer.text
    assert answer.headers["Location"] == f"/api/v1/tasks/{answer.json()['id']}"
    task = wait_task(client, answer.json()["id"], timeout=300)
    assert task["state"] == "succeeded", task
    during = records_written(shell)
    assert during > before, "the guest wrote nothing while its disk moved"
    result = task["result"]
    new = str(shared / os.path.basename(old))
    assert (result["from"], result["to"], result["live"], result["path"]) == (
        "local", "md-shared", True, new,
    )  # fmt: skip
    assert result["source"] == f"deleted: {old}"
    assert task["bytes_total"] and task["bytes_done"] == task["bytes_total"]
    assert disk_path(client, VM) == new and _persistent_disk(conn) == new
    assert not private_libvirtd.host_path(old).exists()

    written = stop_writer(shell)
    assert written >= during
    restart(client, VM)
    shell = SerialShell(corral, VM)
    assert records_on_disk(shell, written) == written
    assert disk_path(client, VM) == new

    audit = client.get("/audit", params={"action": "vm.disk.move"}).json()["items"]
    assert any(e["target"] == f"{VM}/vda->md-shared" and e["outcome"] == "ok" for e in audit)


def test_a_shut_off_disk_moves_back_by_volume_copy_keeping_its_source(
    corral: CorralServer, client: httpx.Client, conn: Domain, shared: Path
) -> None:
    assert client.post(f"/vms/{VM}/stop").status_code == 200
    source = disk_path(client, VM)
    answer = _move(client, {"to": "local", "keep_source": True}, disk="data")
    assert answer.status_code == 202, answer.text
    task = wait_task(client, answer.json()["id"], timeout=300)
    assert task["state"] == "succeeded", task
    assert task["result"]["live"] is False and task["result"]["source"] == f"kept: {source}"
    back = disk_path(client, VM)
    assert back != source and _persistent_disk(conn) == back
    assert Path(source).exists()

    start(client, VM)
    shell = SerialShell(corral, VM)
    written = records_written(shell)  # nothing written in this boot: /tmp/last is gone
    assert written == 0
    assert records_on_disk(shell, 8) == 8


def test_no_room_in_the_target_domain_is_409_with_both_numbers(
    client: httpx.Client, private_libvirtd: PrivateLibvirtd, tmp_path: Path
) -> None:
    small = tmp_path / "small"
    small.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(small)]
    subprocess.run(private_libvirtd.inside_command(mount), check=True, capture_output=True)
    try:
        made = client.post(
            "/storage-domains", json={"kind": "shared-dir", "name": "md-small", "path": str(small)}
        )
        assert made.status_code == 201, made.text
        volumes = {
            v["name"] for v in client.get("/storage-domains/md-small/volumes").json()["items"]
        }
        answer = _move(client, {"to": "md-small"})
        assert answer.status_code == 409, answer.text
        detail = answer.json()["detail"]
        assert "storage domain md-small has" in detail and "free on host" in detail
        assert f"needs 0.25 GiB ({2**28} bytes, its virtual size)" in detail
        after = {v["name"] for v in client.get("/storage-domains/md-small/volumes").json()["items"]}
        assert after == volumes
    finally:
        client.delete("/storage-domains/md-small")
        umount = ["umount", str(small)]
        subprocess.run(private_libvirtd.inside_command(umount), check=True, capture_output=True)


def test_a_cancelled_live_move_leaves_the_vm_on_its_disk_and_no_new_volume(
    corral: CorralServer, client: httpx.Client, conn: Domain, shared: Path
) -> None:
    shell = SerialShell(corral, VM)
    # 16 MiB the copy must carry, at 1 MiB/s: long enough to cancel it half-way.
    shell.run("dd if=/dev/urandom of=/dev/vda bs=1M seek=64 count=16 conv=fsync 2>/dev/null",
              timeout=120)  # fmt: skip
    where = disk_path(client, VM)
    volumes = {v["name"] for v in client.get("/storage-domains/md-shared/volumes").json()["items"]}
    answer = _move(client, {"to": "md-shared", "bandwidth_mib_s": 1})
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["id"]

    def copying() -> bool:
        task = client.get(f"/tasks/{task_id}").json()
        assert task["state"] in ("pending", "running"), task
        return bool(task.get("bytes_done"))

    wait_until(copying, 60, "the copy to start", interval=0.2)
    cancelled = client.post(f"/tasks/{task_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    task = wait_task(client, task_id)
    assert task["state"] == "cancelled", task
    assert disk_path(client, VM) == where and _persistent_disk(conn) == where
    assert "<mirror" not in conn.xml()
    after = {v["name"] for v in client.get("/storage-domains/md-shared/volumes").json()["items"]}
    assert after == volumes
    assert records_on_disk(shell, 8) == 8  # the guest runs on, on its old disk


def test_a_move_a_crashed_manager_left_running_is_resolved_at_start(
    corral: CorralServer, client: httpx.Client, conn: Domain, shared: Path
) -> None:
    where = disk_path(client, VM)
    volumes = {v["name"] for v in client.get("/storage-domains/md-shared/volumes").json()["items"]}
    answer = _move(client, {"to": "md-shared", "bandwidth_mib_s": 1})
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["id"]
    wait_until(lambda: client.get(f"/tasks/{task_id}").json().get("bytes_done") or None, 60,
               "the copy to start", interval=0.2)  # fmt: skip
    corral.kill()  # no chance to clean up: the copy job runs on in QEMU
    try:
        assert conn.job()
    finally:
        corral.start()
    with corral.client() as fresh:
        task = wait_task(fresh, task_id)
        assert task["state"] == "failed", task
        assert "Corral restarted during the move of disk vda of VM 'mover'" in task["error"]
        assert "the copy was stopped and the new volume deleted" in task["error"]
        assert disk_path(fresh, VM) == where and _persistent_disk(conn) == where
        after = {v["name"] for v in fresh.get("/storage-domains/md-shared/volumes").json()["items"]}
        assert after == volumes
    assert "<mirror" not in conn.xml()
