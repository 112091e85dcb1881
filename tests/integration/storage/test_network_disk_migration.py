"""Issue 15's proof for shared storage: a running VM whose disk is on the ``nfs`` domain, and
one whose disk is an iSCSI LUN, each travel h1→h2→h3→h1 through Corral's API with their
heartbeat unbroken and no disk copied.

The disks are existing volumes used as is (``disks[].volume``): a 1 GiB raw file in the
export, a 1 GiB LUN, each with 512 MiB of random data written by the harness before the VM
starts — four times the guest's 256 MiB of RAM, and incompressible, so a disk copy would put
at least that much more on the wire. The wire is the test bed's bridge, captured per hop
without the storage server's traffic (the guest's NFS/iSCSI I/O, not migration): every other
TCP byte between the hosts and the manager counts, and must stay near the RAM size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.multihost import MultiHostTestbed
from corral.testbed.storage_server import EXPORT, StorageServer
from tests.integration.api._support import kernel_vm
from tests.integration.migration._wire import capture
from tests.integration.migration.test_live_migration import Heartbeat, last_heartbeat, migrate

pytestmark = pytest.mark.integration

RAM = 256 * 2**20
WRITTEN = 512 * 2**20
#: The LUN the session's storage server gives these tests (1 GiB; LUNs 1-4 are 64 MiB).
BIG_LUN = 5


@pytest.fixture(scope="module")
def api(multihost_corral: CorralServer) -> Iterator[httpx.Client]:
    with multihost_corral.client() as client:
        yield client


def _fill(path: Path, size: int) -> None:
    """``path`` becomes ``size`` bytes whose first ``WRITTEN`` are random (in place)."""
    with path.open("r+b" if path.exists() else "wb") as out:
        chunk = 16 * 2**20
        for offset in range(0, WRITTEN, chunk):
            out.seek(offset)
            out.write(os.urandom(chunk))
        out.truncate(size)
        out.flush()
        os.fsync(out.fileno())


def _domain(api: httpx.Client, body: dict[str, str]) -> Iterator[str]:
    made = api.post("/storage-domains", json=body)
    assert made.status_code == 201, made.text
    reach = {h["host"]: h["state"] for h in made.json()["hosts"]}
    assert all(reach[h] == "reachable" for h in ("h1", "h2", "h3")), reach
    yield body["name"]
    api.delete(f"/storage-domains/{body['name']}")


@pytest.fixture(scope="module")
def nfs_domain(api: httpx.Client, storage_server: StorageServer) -> Iterator[str]:
    _fill(storage_server.export_dir / "mig-nfs-data.img", 2**30)
    body = {"kind": "nfs", "name": "mig-nfs", "server": storage_server.address, "export": EXPORT}
    yield from _domain(api, body)
    (storage_server.export_dir / "mig-nfs-data.img").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def iscsi_domain(api: httpx.Client, storage_server: StorageServer) -> Iterator[str]:
    assert storage_server.lun_sizes_mib[BIG_LUN - 1] == 1024
    _fill(storage_server.lun_file(BIG_LUN), 2**30)
    body = {"kind": "iscsi", "name": "mig-iscsi", "portal": storage_server.portal,
            "target": storage_server.iqn}  # fmt: skip
    yield from _domain(api, body)


def _wire_bytes(pcap: Path) -> int:
    return pcap.stat().st_size


def _round_trip(
    api: httpx.Client,
    testbed: MultiHostTestbed,
    storage_server: StorageServer,
    kernel_guest: KernelGuest,
    vm: str,
    disk: dict[str, str],
    tmp_path: Path,
) -> None:
    spec = kernel_vm(vm, kernel_guest, disk_gib=None, host="h1")
    spec["disks"] = [{"name": "data", **disk}]
    made = api.post("/vms", json=spec)
    assert made.status_code == 201, made.text
    [shown] = [d for d in made.json()["disks"] if d["device"] == "disk"]
    volumes = api.get(f"/storage-domains/{disk['domain']}/volumes").json()["items"]
    [volume] = [v for v in volumes if v["name"] == disk["volume"]]
    assert shown["path"] == volume["path"] and volume["used_by"] == [vm]
    assert volume["capacity_bytes"] >= 2**30 - 512
    try:
        assert api.post(f"/vms/{vm}/start").status_code == 200
        wait_until(lambda: last_heartbeat(api, vm) > 1, 90, f"{vm}'s heartbeat", interval=0.3)
        # Everything but the storage server's traffic (the guest's disk I/O).
        wire = f"tcp and not host {storage_server.address}"
        for to in ("h2", "h3", "h1"):
            heartbeat = Heartbeat(api, testbed, vm, to)
            with capture(testbed, tmp_path / f"{vm}-{to}.pcap", wire) as pcap:
                task = migrate(api, vm, to)
            assert task["state"] == "succeeded", task["error"]
            migration = task["result"]["migration"]
            assert migration["request"]["storage"] == "shared", migration["request"]
            assert migration["destination_volumes"] == []
            assert not (migration["completed"] or {}).get("disk_total"), migration["completed"]
            assert api.get(f"/vms/{vm}").json()["host"] == to
            heartbeat.goes_on()
            on_wire = _wire_bytes(pcap)
            # The guest's memory crossed (TLS; zero pages are sent as markers), its disk did not.
            assert 4 * 2**20 < on_wire < RAM * 5 // 4, (to, on_wire)
            assert on_wire < WRITTEN // 2, (to, on_wire)
    finally:
        api.post(f"/vms/{vm}/stop")
        gone = api.delete(f"/vms/{vm}")
        assert gone.status_code == 204, gone.text


def test_a_vm_on_nfs_travels_h1_h2_h3_h1_copying_no_disk(
    api: httpx.Client,
    testbed: MultiHostTestbed,
    storage_server: StorageServer,
    kernel_guest: KernelGuest,
    nfs_domain: str,
    tmp_path: Path,
) -> None:
    disk = {"volume": "mig-nfs-data.img", "domain": nfs_domain}
    _round_trip(api, testbed, storage_server, kernel_guest, "mig-nfs-vm", disk, tmp_path)


def test_a_vm_on_an_iscsi_lun_travels_h1_h2_h3_h1_copying_no_disk(
    api: httpx.Client,
    testbed: MultiHostTestbed,
    storage_server: StorageServer,
    kernel_guest: KernelGuest,
    iscsi_domain: str,
    tmp_path: Path,
) -> None:
    disk = {"volume": f"lun-{BIG_LUN}", "domain": iscsi_domain}
    _round_trip(api, testbed, storage_server, kernel_guest, "mig-iscsi-vm", disk, tmp_path)


def test_an_iscsi_lun_is_one_vms_disk_and_outlives_it(
    multihost_corral: CorralServer,
    api: httpx.Client,
    kernel_guest: KernelGuest,
    iscsi_domain: str,
    storage_server: StorageServer,
) -> None:
    """Through the CLI: a LUN taken as a disk, refused to a second VM naming the first, an
    unknown LUN a 404 naming those there are; deleting the VM with its disks keeps the LUN."""
    spec = kernel_vm("mig-lun-a", kernel_guest, disk_gib=None, host="h2")
    kernel, initrd = spec["boot"]["kernel"], spec["boot"]["initrd"]
    base = ["vm", "create", "--host", "h2", "--memory", "256M", "--no-nic", "--kernel", kernel,
            "--initrd", initrd, "--cmdline", spec["boot"]["cmdline"]]  # fmt: skip
    lun = f"volume=lun-1,domain={iscsi_domain},name=data"
    made = multihost_corral.cli(*base[:2], "mig-lun-a", *base[2:], "--disk", lun)
    assert made.returncode == 0, made.stderr
    try:
        again = multihost_corral.cli(*base[:2], "mig-lun-b", *base[2:], "--disk", lun)
        assert again.returncode != 0
        said = " ".join(again.stderr.split())
        assert f"volume lun-1 of storage domain {iscsi_domain} is used by VM mig-lun-a" in said
        unknown = multihost_corral.cli(
            *base[:2], "mig-lun-b", *base[2:], "--disk", f"volume=lun-9,domain={iscsi_domain}"
        )
        assert unknown.returncode != 0
        said = " ".join(unknown.stderr.split())
        assert "no volume 'lun-9' in storage domain" in said and "lun-1, lun-2" in said, said
        assert api.get("/vms/mig-lun-b").status_code == 404
    finally:
        gone = multihost_corral.cli("vm", "delete", "mig-lun-a", "--delete-disks", "--yes")
    assert gone.returncode == 0, gone.stderr
    assert "it is an iSCSI LUN" in gone.stdout + gone.stderr
    luns = [v["name"] for v in api.get(f"/storage-domains/{iscsi_domain}/volumes").json()["items"]]
    assert "lun-1" in luns and storage_server.lun_file(1).exists()
