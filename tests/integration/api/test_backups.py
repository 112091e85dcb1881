"""Backups through Corral's API and CLI, on the suite's private libvirtd: a store (one plain,
one encrypted with a key from `corral backup key new`), a running VM backed up full then
incremental, a restore to a new VM whose disk equals the source's, a flipped byte that verify
names and restore refuses (nothing made), and refusals that change nothing."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import libvirt
import libvirt_qemu
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_images import KernelGuest
from corral.testbed.private_libvirtd import PrivateLibvirtd
from tests.integration.api._support import kernel_vm, wait_task

MIB = 2**20


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


def _write(conn: libvirt.virConnect, vm: str, command: str) -> None:
    """Into the running disk through QEMU's block layer (its dirty bitmaps see it), flushed."""
    dom = conn.lookupByName(vm)
    hmp = libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP
    blocks = libvirt_qemu.qemuMonitorCommand(dom, "info block", hmp)
    [device] = [line.split(":", 1)[1].strip() for line in blocks.splitlines()
                if line.strip().startswith("Attached to:")]  # fmt: skip
    for each in (command, "flush"):
        said = libvirt_qemu.qemuMonitorCommand(dom, f'qemu-io -d {device} "{each}"', hmp)
        assert "error" not in said.lower(), said


def _disk(client: httpx.Client, vm: str) -> str:
    disks = [d for d in client.get(f"/vms/{vm}").json()["disks"] if d["device"] == "disk"]
    return str(disks[0]["path"])


def _backup(client: httpx.Client, vm: str, store: str) -> dict[str, object]:
    answer = client.post(f"/vms/{vm}/backups", json={"store": store})
    assert answer.status_code == 202, answer.text
    task = wait_task(client, answer.json()["id"])
    assert task["state"] == "succeeded", task
    return task["result"]  # type: ignore[no-any-return]


def test_backup_restore_and_verify(
    client: httpx.Client,
    corral: CorralServer,
    conn: libvirt.virConnect,
    private_libvirtd: PrivateLibvirtd,
    kernel_guest: KernelGuest,
    tmp_path: Path,
) -> None:
    plain = tmp_path / "plain"
    made = client.post("/backup-stores", json={"name": "bs", "path": str(plain)})
    assert made.status_code == 201, made.text
    again = client.post("/backup-stores", json={"name": "bs2", "path": str(plain)})
    assert again.status_code == 409 and "not an empty directory" in again.json()["detail"]
    assert client.post("/backup-stores", json={"name": "bad", "path": str(tmp_path / "x"),
                                               "key": "hello"}).status_code == 422  # fmt: skip
    assert [s["name"] for s in client.get("/backup-stores").json()] == ["bs"]

    key = tmp_path / "backup.key"
    assert corral.cli("backup", "key", "new", str(key)).returncode == 0
    secret = key.read_text().strip()
    added = corral.cli("backup", "store", "add", "enc", "--path", str(tmp_path / "enc"),
                       "--key-file", str(key))  # fmt: skip
    assert added.returncode == 0 and "encrypted" in added.stdout, added.stderr
    shown = client.get("/backup-stores/enc")
    assert shown.json()["encrypted"] is True and secret.split(":")[1] not in shown.text

    assert client.post("/vms", json=kernel_vm("bk1", kernel_guest)).status_code == 201
    try:
        assert client.post("/vms/bk1/start").status_code == 200
        _write(conn, "bk1", "write -P 0x5a 4M 16M")
        first = _backup(client, "bk1", "bs")
        assert first["kind"] == "full" and 16 * MIB <= int(first["bytes_read"]) <= 17 * MIB  # type: ignore[call-overload]
        _write(conn, "bk1", "write -P 0xa5 100M 2M")
        done = corral.cli("vm", "backup", "bk1", "--store", "bs")
        assert done.returncode == 0, done.stderr
        assert "incremental" in done.stdout, done.stdout
        listed = client.get("/vms/bk1/backups").json()
        assert [b["kind"] for b in listed] == ["full", "incremental"]
        second = listed[1]
        assert second["bytes_read"] <= 1.2 * 2 * MIB and second["parent"] == first["id"]
        encrypted = _backup(client, "bk1", "enc")
        assert encrypted["kind"] == "full"

        # Restored: a new VM whose disk equals the source's (the guest writes none meanwhile).
        answer = client.post(f"/backup-stores/bs/backups/bk1/{second['id']}/restore",
                             json={"name": "bk1-copy"})  # fmt: skip
        assert answer.status_code == 202, answer.text
        assert wait_task(client, answer.json()["id"])["state"] == "succeeded"
        source = private_libvirtd.host_path(_disk(client, "bk1"))
        copy = private_libvirtd.host_path(_disk(client, "bk1-copy"))
        same = subprocess.run(["qemu-img", "compare", "-U", str(source), str(copy)],
                              capture_output=True, text=True)  # fmt: skip
        assert same.returncode == 0, same.stdout + same.stderr

        # One byte flipped in a chunk: verify names it, restore refuses and makes nothing.
        verified = corral.cli("backup", "verify", "--store", "bs")
        assert verified.returncode == 0 and "all sound" in verified.stdout, verified.stderr
        chunk = max((plain / "chunks").glob("*/*"), key=lambda p: p.stat().st_size)
        raw = bytearray(chunk.read_bytes())
        raw[len(raw) // 2] ^= 1
        chunk.write_bytes(bytes(raw))
        failed = corral.cli("backup", "verify", "--store", "bs")
        assert failed.returncode != 0 and chunk.name in failed.stderr, failed.stderr
        answer = client.post(f"/backup-stores/bs/backups/bk1/{second['id']}/restore",
                             json={"name": "bk1-bad"})  # fmt: skip
        task = wait_task(client, answer.json()["id"])
        assert task["state"] == "failed" and "cannot be restored" in task["error"], task
        assert client.get("/vms/bk1-bad").status_code == 404
        pool = conn.storagePoolLookupByName("corral")
        pool.refresh()
        assert not [v for v in pool.listVolumes() if "bk1-bad" in v or v.startswith(".restore")]

        # Retention: the newest backup of bk1 stays, the older goes (a dry run first).
        dry = corral.cli("backup", "prune", "--store", "bs", "--keep-last", "1", "--dry-run")
        assert dry.returncode == 0 and f"bk1/{first['id']}" in dry.stdout, dry.stderr
        assert len(client.get("/backup-stores/bs/backups").json()) == 2
        pruned = client.post("/backup-stores/bs/prune", json={"keep_last": 1})
        assert pruned.status_code == 200, pruned.text
        assert pruned.json()["removed"] == [f"bk1/{first['id']}"]
        left = client.get("/backup-stores/bs/backups", params={"vm": "bk1"}).json()
        assert [b["id"] for b in left] == [second["id"]]
    finally:
        for vm in ("bk1", "bk1-copy"):
            client.post(f"/vms/{vm}/stop")
            client.delete(f"/vms/{vm}", params={"delete_disks": "true"})
        for store in ("bs", "enc"):
            client.delete(f"/backup-stores/{store}")
