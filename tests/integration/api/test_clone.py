"""Linked clones: source and clone share a frozen base and can never see each other's writes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import libvirt
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_images import KernelGuest
from tests.integration.api._support import kernel_vm, wait_log, wait_task


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


def _backing(conn: libvirt.virConnect, path: str) -> str | None:
    pool = conn.storagePoolLookupByName("corral")
    pool.refresh()
    xml = conn.storageVolLookupByPath(path).XMLDesc()
    if "<backingStore>" not in xml:
        return None
    return xml.split("<backingStore>")[1].split("<path>")[1].split("</path>")[0]


def test_linked_clone_boots_and_shares_a_frozen_base(
    client: httpx.Client, conn: libvirt.virConnect, kernel_guest: KernelGuest
) -> None:
    assert client.post("/vms", json=kernel_vm("golden", kernel_guest)).status_code == 201
    original = client.get("/vms/golden").json()["disks"][0]["path"]

    refused = client.post("/vms/golden/clone", json={"name": "golden"})
    assert refused.status_code == 409

    # A source with snapshots: the refusal names them and the command that deletes them.
    taken = client.post("/vms/golden/snapshots", json={"name": "before"})
    assert taken.status_code == 201, taken.text
    refused = client.post("/vms/golden/clone", json={"name": "copy1"})
    assert refused.status_code == 409
    assert "`corral vm snapshot delete golden before`" in refused.json()["detail"]
    assert client.delete("/vms/golden/snapshots/before").status_code == 204

    answer = client.post("/vms/golden/clone", json={"name": "copy1", "description": "a clone"})
    assert answer.status_code == 202, answer.text
    task = wait_task(client, answer.json()["id"])
    assert task["state"] == "succeeded", task

    source_disk = client.get("/vms/golden").json()["disks"][0]["path"]
    clone = client.get("/vms/copy1").json()
    clone_disk = clone["disks"][0]["path"]
    assert clone["description"] == "a clone"
    assert len({original, source_disk, clone_disk}) == 3
    assert _backing(conn, source_disk) == original
    assert _backing(conn, clone_disk) == original
    assert clone["uuid"] != client.get("/vms/golden").json()["uuid"]

    client.post("/vms/copy1/start")
    wait_log(client, "copy1", rb"corral-heartbeat \d+")
    client.post("/vms/copy1/stop")

    # A running source cannot be cloned.
    client.post("/vms/golden/start")
    busy = client.post("/vms/golden/clone", json={"name": "copy2"})
    assert busy.status_code == 409 and "shut it down" in busy.json()["detail"]
    client.post("/vms/golden/stop")

    # Deleting the source keeps the base its clone still needs.
    assert client.delete("/vms/golden", params={"delete_disks": "true"}).status_code == 204
    assert conn.storageVolLookupByPath(original) is not None
    client.post("/vms/copy1/start")
    wait_log(client, "copy1", rb"CORRAL-GUEST-BOOTED", start=0)
    client.post("/vms/copy1/stop")
    assert client.delete("/vms/copy1", params={"delete_disks": "true"}).status_code == 204
    # The last user of the base is gone: so is the base.
    pool = conn.storagePoolLookupByName("corral")
    pool.refresh()
    assert original not in {pool.storageVolLookupByName(v).path() for v in pool.listVolumes()}
