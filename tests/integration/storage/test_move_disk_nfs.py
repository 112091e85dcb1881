"""``corral vm move-disk`` from ``local`` to an ``nfs`` domain on the test bed (nfs-ganesha in
its storage namespace): a running TCG guest on h1 writes its disk continuously while the disk
moves live into the export (block copy onto QEMU's own NFS client); every record survives a
cold restart on the new volume, a network disk in the definition. The manager's own host does
not reach the export: a move there is refused naming the host, the domain and why."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import libvirt
import pytest
from lxml import etree

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_images import KernelGuest
from corral.testbed.multihost import MultiHostTestbed
from corral.testbed.storage_server import EXPORT, StorageServer
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
DOMAIN = "md-nfs"
VM = "md-nfs-vm"


@pytest.fixture(scope="module")
def api(multihost_corral: CorralServer) -> Iterator[httpx.Client]:
    with multihost_corral.client() as client:
        yield client


@pytest.fixture(scope="module")
def nfs_domain(api: httpx.Client, storage_server: StorageServer) -> Iterator[str]:
    body = {"kind": "nfs", "name": DOMAIN, "server": storage_server.address, "export": EXPORT}
    made = api.post("/storage-domains", json=body)
    assert made.status_code == 201, made.text
    yield DOMAIN
    for vm in (VM, "md-nfs-local"):
        api.post(f"/vms/{vm}/stop")
        api.delete(f"/vms/{vm}", params={"delete_disks": "true"})
    for volume in api.get(f"/storage-domains/{DOMAIN}/volumes").json()["items"]:
        api.delete(f"/storage-domains/{DOMAIN}/volumes/{volume['name']}")
    api.delete(f"/storage-domains/{DOMAIN}")


def _persistent_disk(testbed: MultiHostTestbed) -> etree._Element:
    conn = libvirt.open(testbed.host("h1").unix_uri)
    try:
        xml = conn.lookupByName(VM).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    finally:
        conn.close()
    [disk] = etree.fromstring(xml.encode()).xpath("./devices/disk[target/@dev='vda']")
    return disk


def test_move_disk_local_to_nfs_while_the_guest_writes(
    multihost_corral: CorralServer,
    api: httpx.Client,
    kernel_guest: KernelGuest,
    nfs_domain: str,
    storage_server: StorageServer,
    testbed: MultiHostTestbed,
) -> None:
    made = api.post("/vms", json=kernel_vm(VM, kernel_guest, disk_gib=0.25, host="h1"))
    assert made.status_code == 201, made.text
    assert api.post(f"/vms/{VM}/start").status_code == 200
    wait_log(api, VM, rb"CORRAL-GUEST-BOOTED")
    old = disk_path(api, VM)
    shell = SerialShell(multihost_corral, VM)
    start_writer(shell)
    before = records_written(shell)

    answer = api.post(f"/vms/{VM}/disks/vda/move", json={"to": nfs_domain})
    assert answer.status_code == 202, answer.text
    task = wait_task(api, answer.json()["id"], timeout=300)
    assert task["state"] == "succeeded", task
    during = records_written(shell)
    assert during > before, "the guest wrote nothing while its disk moved"
    result = task["result"]
    name = old.rsplit("/", 1)[1]
    url = f"nfs://{storage_server.address}{EXPORT}/{name}"
    assert (result["from"], result["to"], result["live"]) == ("local", nfs_domain, True)
    assert result["source"] == f"deleted: {old}"
    assert disk_path(api, VM) == url
    assert (storage_server.export_dir / name).is_file()
    disk = _persistent_disk(testbed)
    assert disk.get("type") == "network"
    assert disk.find("source").get("protocol") == "nfs"
    assert disk.find("source").get("name") == f"{EXPORT}/{name}"

    written = stop_writer(shell)
    assert written >= during
    restart(api, VM)
    shell = SerialShell(multihost_corral, VM)
    assert records_on_disk(shell, written) == written
    assert disk_path(api, VM) == url


def test_the_shut_off_disk_moves_back_from_nfs_through_the_host_agent(
    multihost_corral: CorralServer,
    api: httpx.Client,
    nfs_domain: str,
    storage_server: StorageServer,
    testbed: MultiHostTestbed,
) -> None:
    shell = SerialShell(multihost_corral, VM)
    kept = records_on_disk(shell, 64)
    assert kept == 64
    assert api.post(f"/vms/{VM}/stop").status_code == 200
    url = disk_path(api, VM)
    answer = api.post(f"/vms/{VM}/disks/data/move", json={"to": "local"})
    assert answer.status_code == 202, answer.text
    task = wait_task(api, answer.json()["id"], timeout=300)
    assert task["state"] == "succeeded", task
    assert task["result"]["live"] is False and task["result"]["source"] == f"deleted: {url}"
    assert not (storage_server.export_dir / url.rsplit("/", 1)[1]).exists()
    back = disk_path(api, VM)
    assert back.startswith("/")
    disk = _persistent_disk(testbed)
    assert disk.get("type") == "file" and disk.find("source").get("file") == back
    start(api, VM)
    assert records_on_disk(SerialShell(multihost_corral, VM), 64) == 64


def test_domains_the_host_cannot_use_are_refused_naming_why(
    api: httpx.Client, kernel_guest: KernelGuest, storage_server: StorageServer
) -> None:
    body = {"kind": "iscsi", "name": "md-san", "portal": storage_server.portal,
            "target": storage_server.iqn}  # fmt: skip
    made = api.post("/storage-domains", json=body)
    assert made.status_code == 201, made.text
    try:
        spec = kernel_vm("md-nfs-local", kernel_guest, disk_gib=0.25, host="local")
        assert api.post("/vms", json=spec).status_code == 201
        answer = api.post("/vms/md-nfs-local/disks/vda/move", json={"to": "md-san"})
        assert answer.status_code == 409, answer.text
        assert answer.json()["detail"].startswith(
            "host local does not reach storage domain md-san (unreachable: "
        )
        # h1 reaches it, but LUNs are made on the target, not by Corral.
        answer = api.post(f"/vms/{VM}/disks/vda/move", json={"to": "md-san"})
        assert answer.status_code == 409, answer.text
        assert "storage domain md-san cannot take a moved disk" in answer.json()["detail"]
    finally:
        api.delete("/storage-domains/md-san")
