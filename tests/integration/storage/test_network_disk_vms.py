"""VMs with their disk on the ``nfs`` and ``iscsi`` storage domains of the test bed's storage
server, made through the API on a test-bed host: QEMU's own NFS/iSCSI clients carry what the
guest writes, found afterwards in the server's files (a qcow2 in the export, a LUN's backing
file). Their migrations: test_network_disk_migration.py."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.storage_server import EXPORT, StorageServer
from tests.integration.api._support import SerialShell, kernel_vm

pytestmark = pytest.mark.integration

NFS_DOMAIN = "vm-nas"
ISCSI_DOMAIN = "vm-san"
HEARTBEAT = re.compile(rb"corral-heartbeat (\d+)")
MARK = b"CORRAL-NETWORK-DISK-WRITE"


@pytest.fixture(scope="module")
def api(multihost_corral: CorralServer) -> Iterator[httpx.Client]:
    with multihost_corral.client() as client:
        yield client


@pytest.fixture(scope="module")
def nfs_domain(api: httpx.Client, storage_server: StorageServer) -> Iterator[str]:
    body = {"kind": "nfs", "name": NFS_DOMAIN, "server": storage_server.address, "export": EXPORT}
    made = api.post("/storage-domains", json=body)
    assert made.status_code == 201, made.text
    yield NFS_DOMAIN
    api.delete(f"/storage-domains/{NFS_DOMAIN}")


@pytest.fixture(scope="module")
def iscsi_domain(api: httpx.Client, storage_server: StorageServer) -> Iterator[str]:
    body = {"kind": "iscsi", "name": ISCSI_DOMAIN, "portal": storage_server.portal,
            "target": storage_server.iqn}  # fmt: skip
    made = api.post("/storage-domains", json=body)
    assert made.status_code == 201, made.text
    yield ISCSI_DOMAIN
    api.delete(f"/storage-domains/{ISCSI_DOMAIN}")


def _heartbeat(api: httpx.Client, name: str) -> int:
    answer = api.get(f"/vms/{name}/log", params={"tail_bytes": 2048})
    found = HEARTBEAT.findall(answer.content) if answer.status_code == 200 else []
    return int(found[-1]) if found else 0


def _start(api: httpx.Client, spec: dict[str, Any]) -> str:
    made = api.post("/vms", json=spec)
    assert made.status_code == 201, made.text
    name = str(spec["name"])
    started = api.post(f"/vms/{name}/start")
    assert started.status_code == 200, started.text
    wait_until(lambda: _heartbeat(api, name) > 1, 120, f"{name}'s heartbeat", interval=0.3)
    return name


def _write_mark(corral: CorralServer, name: str) -> None:
    """The guest writes MARK at byte 512 of its only disk (vda), synced to the storage."""
    said = SerialShell(corral, name).run(
        f"printf %s {MARK.decode()} | dd of=/dev/vda bs=512 seek=1 conv=fsync 2>/dev/null"
        " && echo WRITTEN-$((6*7))",
        timeout=90,
    )
    assert b"WRITTEN-42" in said, said[-500:]


def test_nfs_vm_disk_is_a_file_of_the_export_and_holds_what_the_guest_wrote(
    multihost_corral: CorralServer,
    api: httpx.Client,
    nfs_domain: str,
    storage_server: StorageServer,
    kernel_guest: KernelGuest,
    tmp_path: Path,
) -> None:
    spec = kernel_vm("nfs-vm1", kernel_guest, disk_gib=None, host="h1")
    spec["disks"] = [{"name": "data", "size_gib": 0.0625, "domain": nfs_domain}]
    name = _start(api, spec)
    volume = f"{name}-data.qcow2"
    try:
        [disk] = [d for d in api.get(f"/vms/{name}").json()["disks"] if d["device"] == "disk"]
        assert disk["path"] == f"nfs://{storage_server.address}{EXPORT}/{volume}"
        listed = api.get(f"/storage-domains/{nfs_domain}/volumes").json()["items"]
        assert [v["used_by"] for v in listed if v["name"] == volume] == [[name]]
        _write_mark(multihost_corral, name)
    finally:
        api.post(f"/vms/{name}/stop")
    # The server's file holds what the guest wrote (read past the NFS client: qcow2 → raw).
    raw = tmp_path / "data.raw"
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw",
                    str(storage_server.export_dir / volume), str(raw)], check=True)  # fmt: skip
    assert raw.read_bytes()[512 : 512 + len(MARK)] == MARK
    gone = api.delete(f"/vms/{name}", params={"delete_disks": True})
    assert gone.status_code in (200, 204), gone.text
    assert "kept" not in gone.text  # deleted with its VM, through the domain's driver
    assert not (storage_server.export_dir / volume).exists()
    listed = api.get(f"/storage-domains/{nfs_domain}/volumes").json()["items"]
    assert volume not in [v["name"] for v in listed]


def test_iscsi_vm_disk_is_a_lun_and_holds_what_the_guest_wrote(
    multihost_corral: CorralServer,
    api: httpx.Client,
    iscsi_domain: str,
    storage_server: StorageServer,
    kernel_guest: KernelGuest,
) -> None:
    """LUN 3 as the VM's disk (an existing volume: LUNs are made on the target)."""
    spec = kernel_vm("iscsi-vm1", kernel_guest, disk_gib=None, host="h1")
    spec["disks"] = [{"name": "data", "volume": "lun-3", "domain": iscsi_domain}]
    name = _start(api, spec)
    try:
        [disk] = [d for d in api.get(f"/vms/{name}").json()["disks"] if d["device"] == "disk"]
        assert disk["path"] == f"iscsi://{storage_server.portal}/{storage_server.iqn}/3"
        _write_mark(multihost_corral, name)
    finally:
        api.post(f"/vms/{name}/stop")
    with storage_server.lun_file(3).open("rb") as lun:
        lun.seek(512)
        assert lun.read(len(MARK)) == MARK
    gone = api.delete(f"/vms/{name}", params={"delete_disks": True})
    assert gone.status_code in (200, 204), gone.text
    luns = [v["name"] for v in api.get(f"/storage-domains/{iscsi_domain}/volumes").json()["items"]]
    assert "lun-3" in luns  # the LUN stays: it is the target's
