"""VMs with disks on a ``shared-dir`` storage domain, on the test bed: the disk is made in the
domain, placement and the migration pre-flight know which hosts reach it, and a live migration
between hosts that reach it copies no disk (the test-bed hosts share this machine's
filesystem, so one directory is one domain for all of them)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import ISOLINUX_BANNER, IsoGuest, KernelGuest
from corral.testbed.multihost import MultiHostTestbed
from tests.integration.api._support import kernel_vm, wait_log

pytestmark = pytest.mark.integration

DOMAIN = "sd-vms"
VM = "sd-traveller"
HEARTBEAT = re.compile(rb"corral-heartbeat (\d+)")


@pytest.fixture(scope="module")
def api(multihost_corral: CorralServer) -> Iterator[httpx.Client]:
    with multihost_corral.client() as client:
        yield client


@pytest.fixture(scope="module")
def shared(
    api: httpx.Client, testbed: MultiHostTestbed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Domain ``DOMAIN``: reached by every host but h3, where a tmpfs hides the directory."""
    path = tmp_path_factory.mktemp("sd-vms")
    h3 = testbed.host("h3")
    subprocess.run(h3.inside(["mount", "-t", "tmpfs", "corral-test", str(path)]), check=True)
    try:
        made = api.post(
            "/storage-domains", json={"kind": "shared-dir", "name": DOMAIN, "path": str(path)}
        )
    finally:
        subprocess.run(h3.inside(["umount", str(path)]), check=True)
    assert made.status_code == 201, made.text
    reach = {h["host"]: h["state"] for h in made.json()["hosts"]}
    assert reach == {"local": "reachable", "h1": "reachable", "h2": "reachable",
                     "h3": "unreachable"}  # fmt: skip
    yield path
    api.delete(f"/storage-domains/{DOMAIN}")


def _spec(name: str, guest: KernelGuest, **extra: Any) -> dict[str, Any]:
    spec = kernel_vm(name, guest, disk_gib=None, **extra)
    spec["disks"] = [{"name": "data", "size_gib": 0.25, "domain": DOMAIN}]
    return spec


def _heartbeat(api: httpx.Client, name: str) -> int:
    answer = api.get(f"/vms/{name}/log", params={"tail_bytes": 2048})
    found = HEARTBEAT.findall(answer.content) if answer.status_code == 200 else []
    return int(found[-1]) if found else 0


@pytest.fixture(scope="module")
def traveller(api: httpx.Client, shared: Path, kernel_guest: KernelGuest) -> Iterator[str]:
    made = api.post("/vms", json=_spec(VM, kernel_guest, host="h1"))
    assert made.status_code == 201, made.text
    assert api.post(f"/vms/{VM}/start").status_code == 200
    wait_until(lambda: _heartbeat(api, VM) > 1, 90, f"{VM}'s heartbeat", interval=0.3)
    yield VM
    api.post(f"/vms/{VM}/stop")
    api.delete(f"/vms/{VM}", params={"delete_disks": True})


def test_the_disk_is_made_in_the_domain(api: httpx.Client, shared: Path, traveller: str) -> None:
    [disk] = [d for d in api.get(f"/vms/{traveller}").json()["disks"] if d["device"] == "disk"]
    assert disk["path"] == str(shared / f"{traveller}-data.qcow2")
    assert (shared / f"{traveller}-data.qcow2").is_file()
    listed = api.get(f"/storage-domains/{DOMAIN}/volumes").json()["items"]
    [volume] = [v for v in listed if v["name"] == f"{traveller}-data.qcow2"]
    assert volume["used_by"] == [traveller] and volume["domain"] == DOMAIN


def test_migration_between_hosts_reaching_the_domain_copies_no_disk(
    multihost_corral: CorralServer, api: httpx.Client, shared: Path, traveller: str
) -> None:
    disk = shared / f"{traveller}-data.qcow2"
    inode = disk.stat().st_ino
    for to in ("h2", "h1"):
        before = _heartbeat(api, traveller)
        done = multihost_corral.cli("--json", "vm", "migrate", traveller, "--to", to)
        assert done.returncode == 0, done.stderr
        vm = api.get(f"/vms/{traveller}").json()
        assert vm["host"] == to and vm["state"] == "running"
        task = json.loads(done.stdout)
        assert task["state"] == "succeeded", task
        migration = task["result"]["migration"]
        assert migration["request"]["storage"] == "shared", migration["request"]
        assert migration["destination_volumes"] == []
        completed = migration["completed"] or {}
        assert not completed.get("disk_total"), completed
        wait_until(lambda b=before: _heartbeat(api, traveller) > b, 30, "the heartbeat goes on")
    assert disk.stat().st_ino == inode  # the same file all along


def test_a_destination_that_does_not_reach_the_domain_is_refused_with_the_reason(
    api: httpx.Client, traveller: str
) -> None:
    answer = api.post(f"/vms/{traveller}/migrate", json={"to": "h3"})
    assert answer.status_code == 409, answer.text
    detail = answer.json()["detail"]
    assert f"is on storage domain {DOMAIN}, which host h3 does not reach" in detail
    assert "not the filesystem the other hosts share" in detail
    assert api.get(f"/vms/{traveller}").json()["host"] in ("h1", "h2")


def test_placement_leaves_out_hosts_that_do_not_reach_the_domain(
    api: httpx.Client, shared: Path, kernel_guest: KernelGuest
) -> None:
    refused = api.post("/vms", json=_spec("sd-on-h3", kernel_guest, host="h3"))
    assert refused.status_code == 409, refused.text
    assert f"host h3 does not reach storage domain {DOMAIN}" in refused.json()["detail"]
    assert not (shared / "sd-on-h3-data.qcow2").exists()
    placed = api.post("/vms", json=_spec("sd-placed", kernel_guest))
    assert placed.status_code == 201, placed.text
    try:
        assert placed.json()["host"] != "h3"
    finally:
        api.delete("/vms/sd-placed", params={"delete_disks": True})
    assert not (shared / "sd-placed-data.qcow2").exists()  # deleted with its VM


def test_a_domain_in_use_is_not_deleted(
    multihost_corral: CorralServer, api: httpx.Client, traveller: str
) -> None:
    refused = multihost_corral.cli("storage-domain", "delete", DOMAIN, "--yes")
    assert refused.returncode != 0
    said = " ".join(refused.stderr.split())
    assert f"storage domain {DOMAIN} is used by VM(s) {traveller}" in said, said
    assert api.get(f"/storage-domains/{DOMAIN}").status_code == 200
    volume = f"{traveller}-data.qcow2"
    kept = api.delete(f"/storage-domains/{DOMAIN}/volumes/{volume}")
    assert kept.status_code == 409 and f"used by VM(s) {traveller}" in kept.json()["detail"]


def test_a_linked_clone_stands_on_a_volume_of_the_domain(
    api: httpx.Client, shared: Path, kernel_guest: KernelGuest
) -> None:
    base = api.post(
        f"/storage-domains/{DOMAIN}/volumes", json={"name": "sd-base", "size_gib": 0.125}
    )
    assert base.status_code == 201, base.text
    spec = kernel_vm("sd-clone", kernel_guest, disk_gib=None, host="h2")
    spec["disks"] = [{"name": "root", "base_image": "sd-base", "domain": DOMAIN}]
    made = api.post("/vms", json=spec)
    assert made.status_code == 201, made.text
    try:
        listed = {
            v["name"]: v for v in api.get(f"/storage-domains/{DOMAIN}/volumes").json()["items"]
        }
        assert listed["sd-base"]["backs"] == ["sd-clone-root.qcow2"]
        assert listed["sd-clone-root.qcow2"]["used_by"] == ["sd-clone"]
        busy = api.delete(f"/storage-domains/{DOMAIN}/volumes/sd-base")
        assert busy.status_code == 409 and "used by VM(s) sd-clone" in busy.json()["detail"]
    finally:
        api.delete("/vms/sd-clone", params={"delete_disks": True})
    assert not (shared / "sd-clone-root.qcow2").exists()
    gone = api.delete(f"/storage-domains/{DOMAIN}/volumes/sd-base")
    assert gone.status_code == 204, gone.text


def test_an_iso_in_the_domain_serves_every_host_reaching_it(
    api: httpx.Client, shared: Path, iso_guest: IsoGuest
) -> None:
    """Uploaded through h1's pool of the domain: one image, listed once; a VM on h2 boots
    from it; h3, which does not reach the domain, is told so."""
    answer = api.put("/images/sd-boot.iso", params={"domain": DOMAIN, "host": "h1"},
                     content=iso_guest.iso.read_bytes())  # fmt: skip
    assert answer.status_code == 201, answer.text
    image = answer.json()["image"]
    assert (image["domain"], image["host"], image["kind"]) == (DOMAIN, None, "iso")
    assert image["path"] == str(shared / "_iso.sd-boot.iso")
    listed = [i for i in api.get("/images").json()["items"] if i["name"] == "sd-boot.iso"]
    assert [(i["domain"], i["host"]) for i in listed] == [(DOMAIN, None)]
    spec = {"name": "sd-cd", "vcpus": 1, "memory_mib": 256, "cdrom": "sd-boot.iso",
            "boot": {"source": "cdrom"}, "disks": [], "nics": [], "start": True}  # fmt: skip
    try:
        refused = api.post("/vms", json=spec | {"name": "sd-cd3", "host": "h3"})
        assert refused.status_code == 409, refused.text
        assert "which host 'h3' (VM 'sd-cd3''s host) does not reach" in refused.json()["detail"]
        made = api.post("/vms", json=spec | {"host": "h2"})
        assert made.status_code == 201, made.text
        wait_log(api, "sd-cd", ISOLINUX_BANNER.encode(), timeout=120)
        wait_log(api, "sd-cd", rb"CORRAL-GUEST-BOOTED", timeout=180)
        assert api.get("/images/sd-boot.iso").json()["used_by"] == ["sd-cd"]
    finally:
        api.post("/vms/sd-cd/stop")
        api.delete("/vms/sd-cd")
    gone = api.delete("/images/sd-boot.iso", params={"domain": DOMAIN})
    assert gone.status_code == 204, gone.text
    assert not (shared / "_iso.sd-boot.iso").exists()


def test_kernel_images_in_the_domain_boot_a_vm_on_another_host(
    api: httpx.Client, shared: Path, kernel_guest: KernelGuest
) -> None:
    """Kernel and initrd uploaded through h1 into the domain: a VM Corral places (on a host
    reaching the domain, never h3) boots them directly."""
    for name, path in (("sd-vmlinuz", kernel_guest.kernel), ("sd-initrd", kernel_guest.initrd)):
        answer = api.put(f"/images/{name}", params={"domain": DOMAIN, "host": "h1",
                         "kind": "kernel"}, content=Path(path).read_bytes())  # fmt: skip
        assert answer.status_code == 201, answer.text
        assert answer.json()["image"]["path"] == str(shared / f"_kernel.{name}")
    spec = kernel_vm("sd-kern", kernel_guest, disk_gib=None, start=True)
    spec["boot"] |= {"kernel": "sd-vmlinuz", "initrd": "sd-initrd"}
    try:
        made = api.post("/vms", json=spec)
        assert made.status_code == 201, made.text
        assert made.json()["host"] != "h3"
        wait_log(api, "sd-kern", rb"CORRAL-GUEST-BOOTED source=kernel", timeout=180)
    finally:
        api.post("/vms/sd-kern/stop")
        api.delete("/vms/sd-kern")
    for name in ("sd-vmlinuz", "sd-initrd"):
        gone = api.delete(f"/images/{name}", params={"domain": DOMAIN})
        assert gone.status_code == 204, gone.text
