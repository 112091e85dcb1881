"""The image library in an ``nfs`` storage domain on the test bed (nfs-ganesha in its storage
namespace): an ISO uploaded through h1 (streamed to h1's host agent, written into the export
with QEMU's NFS client, nothing staged on h1's disk) is one image of the domain, listed once;
a new VM on h3 boots from it as a network CD-ROM (``<disk type='network' device='cdrom'>``).
An upload that ends early leaves nothing in the export; kernel images and iscsi domains are
refused with the reason."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import libvirt
import pytest
from lxml import etree

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import ISOLINUX_BANNER, DiskGuest, IsoGuest, KernelGuest
from corral.testbed.multihost import MultiHostTestbed
from corral.testbed.storage_server import EXPORT, StorageServer
from tests.integration.api._support import wait_log, wait_task

pytestmark = pytest.mark.integration
DOMAIN = "img-nfs"
VM = "img-nfs-vm"
CLONE_VM = "img-nfs-clone"
MIB = 2**20


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
    for vm in (VM, CLONE_VM):
        api.post(f"/vms/{vm}/stop")
        api.delete(f"/vms/{vm}", params={"delete_disks": "true"})
    for image in api.get("/images", params={"domain": DOMAIN}).json()["items"]:
        api.delete(f"/images/{image['name']}", params={"domain": DOMAIN})
    api.delete(f"/storage-domains/{DOMAIN}")


def _upload_task(api: httpx.Client, target: str) -> dict[str, object]:
    tasks = api.get("/tasks").json()["items"]
    return next(t for t in tasks if t["kind"] == "image.upload" and t["target"] == target)


def _cdrom_of(testbed: MultiHostTestbed, host: str, vm: str) -> etree._Element:
    conn = libvirt.open(testbed.host(host).unix_uri)
    try:
        xml = conn.lookupByName(vm).XMLDesc(0)
    finally:
        conn.close()
    [cdrom] = etree.fromstring(xml.encode()).xpath("./devices/disk[@device='cdrom']")
    return cdrom


def test_an_iso_uploaded_into_nfs_on_h1_boots_a_new_vm_on_h3(
    api: httpx.Client,
    iso_guest: IsoGuest,
    nfs_domain: str,
    storage_server: StorageServer,
    testbed: MultiHostTestbed,
) -> None:
    data = iso_guest.iso.read_bytes()
    answer = api.put(
        "/images/boot.iso",
        params={"domain": nfs_domain, "host": "h1", "kind": "iso"},
        content=data,
    )
    assert answer.status_code == 201, answer.text
    image = answer.json()["image"]
    url = f"nfs://{storage_server.address}{EXPORT}/_iso.boot.iso"
    assert (image["domain"], image["host"], image["kind"]) == (nfs_domain, None, "iso")
    assert image["path"] == url and image["capacity_bytes"] == len(data)
    assert answer.headers["location"] == f"/api/v1/images/boot.iso?domain={nfs_domain}"
    stored = storage_server.export_dir / "_iso.boot.iso"
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(data).digest()
    task = _upload_task(api, f"{nfs_domain}/boot.iso")
    assert task["state"] == "succeeded" and task["bytes_done"] == len(data), task
    assert task["result"]["host"] == "h1", task  # type: ignore[index]
    # One image for the whole domain: listed once, whichever host is asked.
    listed = [i for i in api.get("/images").json()["items"] if i["name"] == "boot.iso"]
    assert [(i["domain"], i["host"]) for i in listed] == [(nfs_domain, None)]
    through_h3 = api.get("/images", params={"host": "h3"}).json()["items"]
    assert [i["domain"] for i in through_h3 if i["name"] == "boot.iso"] == [nfs_domain]

    spec = {"name": VM, "vcpus": 1, "memory_mib": 256, "host": "h3", "cdrom": "boot.iso",
            "boot": {"source": "cdrom"}, "disks": [], "nics": [], "start": True}  # fmt: skip
    made = api.post("/vms", json=spec)
    assert made.status_code == 201, made.text
    assert made.json()["host"] == "h3"
    wait_log(api, VM, ISOLINUX_BANNER.encode(), timeout=120)
    wait_log(api, VM, rb"corral\.bootsrc=cdrom", timeout=120)
    wait_log(api, VM, rb"CORRAL-GUEST-BOOTED", timeout=180)
    cdrom = _cdrom_of(testbed, "h3", VM)
    source = cdrom.find("source")
    assert cdrom.get("type") == "network" and source is not None
    assert (source.get("protocol"), source.get("name")) == ("nfs", f"{EXPORT}/_iso.boot.iso")

    shown = api.get("/images/boot.iso").json()
    assert shown["used_by"] == [VM]
    refused = api.delete("/images/boot.iso", params={"domain": nfs_domain})
    assert refused.status_code == 409 and VM in refused.json()["detail"], refused.text
    assert api.post(f"/vms/{VM}/stop").status_code == 200
    assert api.delete(f"/vms/{VM}").status_code == 204
    gone = api.delete("/images/boot.iso", params={"domain": nfs_domain})
    assert gone.status_code == 204, gone.text
    assert not stored.exists()


def _raw_upload(corral: CorralServer, path: str, total: int, first: bytes) -> socket.socket:
    """Start an upload by hand: headers for ``total`` bytes, then only ``first``."""
    sock = socket.create_connection(("127.0.0.1", corral.port))
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {corral.token}\r\nContent-Length: {total}\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    sock.sendall(head.encode() + first)
    return sock


def test_an_nfs_upload_that_ends_early_leaves_nothing_in_the_export(
    multihost_corral: CorralServer,
    api: httpx.Client,
    iso_guest: IsoGuest,
    nfs_domain: str,
    storage_server: StorageServer,
) -> None:
    data = iso_guest.iso.read_bytes()
    path = f"/api/v1/images/gone.iso?kind=iso&domain={nfs_domain}&host=h2"
    sock = _raw_upload(multihost_corral, path, len(data), data[: 4 * MIB])

    def running() -> dict[str, object] | None:
        tasks = [
            t for t in api.get("/tasks").json()["items"] if t["target"] == f"{nfs_domain}/gone.iso"
        ]
        return tasks[0] if tasks and tasks[0]["bytes_done"] else None

    task = wait_until(running, 60, "the upload into nfs to be under way", interval=0.1)
    # The agent writes into a hidden file while the bytes arrive: not an image yet.
    assert api.get("/images/gone.iso").status_code == 404
    sock.close()
    final = wait_task(api, str(task["id"]), timeout=120)
    assert final["state"] == "failed", final
    assert "nothing was kept" in str(final["error"]), final
    leftovers = [p.name for p in storage_server.export_dir.iterdir() if "gone" in p.name
                 or p.name.startswith(".corral-upload-")]  # fmt: skip
    assert leftovers == []
    assert api.get("/images/gone.iso").status_code == 404


def test_kernel_images_in_nfs_and_images_in_iscsi_are_refused_with_the_reason(
    api: httpx.Client, kernel_guest: KernelGuest, nfs_domain: str, storage_server: StorageServer
) -> None:
    data = Path(kernel_guest.kernel).read_bytes()[: 2 * MIB]
    kernel = api.put("/images/vmlinuz", params={"domain": nfs_domain, "kind": "kernel"},
                     content=data)  # fmt: skip
    assert kernel.status_code == 409, kernel.text
    assert "keeps no kernel images: direct kernel boot reads" in kernel.json()["detail"]
    shown = api.get(f"/storage-domains/{nfs_domain}").json()
    assert shown["image_kinds"] == ["iso", "disk"]  # the API says which kinds it keeps
    body = {"kind": "iscsi", "name": "img-san", "portal": storage_server.portal,
            "target": storage_server.iqn}  # fmt: skip
    san = api.post("/storage-domains", json=body)
    assert san.status_code == 201 and san.json()["image_kinds"] == [], san.text
    try:
        lun = api.put("/images/x.iso", params={"domain": "img-san"}, content=data)
        assert lun.status_code == 409, lun.text
        assert "LUNs are made on the target" in lun.json()["detail"]
    finally:
        api.delete("/storage-domains/img-san")
    assert not [p for p in storage_server.export_dir.iterdir() if p.name.startswith("_kernel.")]


def test_a_disk_image_in_nfs_is_the_base_of_a_linked_clone_on_nfs(
    api: httpx.Client, disk_guest: DiskGuest, nfs_domain: str, storage_server: StorageServer
) -> None:
    """The bootable disk guest uploaded as a disk image into the domain (through any host
    reaching it); a VM on h2 gets a qcow2 clone standing on it in the export and boots from it
    over NFS; the image is in use while the clone stands on it.

    The VM names its host: in this suite the manager's own host ("local", the private
    libvirtd) reports reaching the export, because its host agent runs in this machine's
    network namespace, while that libvirtd's QEMU runs in a namespace with no route to the
    storage server — placement could pick it and the guest would not start."""
    data = disk_guest.disk.read_bytes()
    answer = api.put("/images/nfs-base", params={"domain": nfs_domain, "kind": "disk"},
                     content=data)  # fmt: skip
    assert answer.status_code == 201, answer.text
    assert answer.json()["image"]["format"] == "qcow2"
    root = {"name": "root", "base_image": "nfs-base", "domain": nfs_domain}
    spec = {"name": CLONE_VM, "host": "h2", "vcpus": 1, "memory_mib": 256, "nics": [],
            "start": True, "disks": [root]}  # fmt: skip
    made = api.post("/vms", json=spec)
    assert made.status_code == 201, made.text
    wait_log(api, CLONE_VM, rb"CORRAL-GUEST-BOOTED source=disk", timeout=180)
    clone = storage_server.export_dir / f"{CLONE_VM}-root.qcow2"
    assert clone.is_file() and clone.read_bytes()[:4] == b"QFI\xfb"
    image = api.get("/images/nfs-base").json()
    assert (image["domain"], image["used_by"]) == (nfs_domain, [CLONE_VM])
    refused = api.delete("/images/nfs-base", params={"domain": nfs_domain})
    assert refused.status_code == 409 and CLONE_VM in refused.json()["detail"], refused.text
    assert api.post(f"/vms/{CLONE_VM}/stop").status_code == 200
    gone = api.delete(f"/vms/{CLONE_VM}", params={"delete_disks": "true"})
    assert gone.status_code == 204, gone.text
    assert not clone.exists(), gone.headers.get("corral-notes")  # its nfs volume went too
    assert api.delete("/images/nfs-base", params={"domain": nfs_domain}).status_code == 204
    assert not (storage_server.export_dir / "_disk.nfs-base").exists()


def test_the_cli_uploads_lists_and_deletes_an_image_of_the_nfs_domain(
    multihost_corral: CorralServer,
    iso_guest: IsoGuest,
    nfs_domain: str,
    storage_server: StorageServer,
) -> None:
    cli = multihost_corral.cli
    up = cli("image", "upload", str(iso_guest.iso), "--name", "cli.iso", "--domain",
             nfs_domain, "--host", "h2", timeout=300)  # fmt: skip
    assert up.returncode == 0, up.stderr
    assert f"uploaded iso image cli.iso to storage domain {nfs_domain}" in up.stdout
    listed = cli("image", "list", "--domain", nfs_domain)
    assert listed.returncode == 0, listed.stderr
    row = next(line.split() for line in listed.stdout.splitlines() if line.startswith("cli.iso"))
    assert row[:4] == ["cli.iso", nfs_domain, "-", "iso"], listed.stdout
    shown = cli("storage-domain", "show", nfs_domain)
    assert "images kept: iso, disk" in shown.stdout, shown.stdout
    gone = cli("image", "delete", "cli.iso", "--domain", nfs_domain, "--yes")
    assert gone.returncode == 0, gone.stderr
    assert not (storage_server.export_dir / "_iso.cli.iso").exists()
