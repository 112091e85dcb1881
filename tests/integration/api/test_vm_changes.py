"""Changing real guests through Corral: disks and NICs plugged into running x86_64, s390x and
aarch64 guests appear inside them (seen from their serial shell) and go again; vCPUs and memory
change live within the maximums set at creation, or at the next start; refusals leave the VM
as it was."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import libvirt
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from tests.integration.api._support import SerialShell, kernel_vm, wait_log


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


def _start(client: httpx.Client, spec: dict[str, Any]) -> str:
    made = client.post("/vms", json=spec)
    assert made.status_code == 201, made.text
    assert client.post(f"/vms/{spec['name']}/start").status_code == 200
    wait_log(client, spec["name"], rb"CORRAL-GUEST-BOOTED")
    return str(spec["name"])


def _remove(client: httpx.Client, name: str) -> None:
    client.post(f"/vms/{name}/stop")
    client.delete(f"/vms/{name}", params={"delete_disks": "true"})


def _ok(answer: httpx.Response, applied: str) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    change: dict[str, Any] = answer.json()
    assert change["applied"] == applied, change
    return change


def _until_shell(shell: SerialShell, command: str, pattern: bytes, timeout: float = 30) -> bytes:
    """Run ``command`` until its output matches (hot-plug takes the guest a moment)."""

    def seen() -> bytes | None:
        out = shell.run(command)
        return out if re.search(pattern, out, re.M) else None

    return wait_until(seen, timeout, f"{pattern!r} from {command!r}", interval=0.5)


def _hotplug_disk_and_nic(client: httpx.Client, corral: CorralServer, name: str) -> None:
    """A virtio disk and NIC go into the running guest and leave it again."""
    shell = SerialShell(corral, name)
    assert b"vdb" not in shell.run("ls /sys/block")
    change = _ok(client.post(f"/vms/{name}/disks", json={"name": "extra", "size_gib": 1}), "live")
    assert "disk extra (vdb" in change["changes"][0]
    # 1 GiB in 512-byte sectors, as the guest's kernel sees the new disk.
    _until_shell(shell, "cat /sys/block/vdb/size", rb"^2097152\r?$")
    nic = _ok(client.post(f"/vms/{name}/nics", json={"network": "user"}), "live")
    (mac,) = [n["mac"] for n in nic["vm"]["nics"]]
    _until_shell(shell, "cat /sys/class/net/eth0/address", re.escape(mac.encode()))
    _ok(client.delete(f"/vms/{name}/nics/{mac}"), "live")
    _until_shell(shell, "ls /sys/class/net", rb"^lo\r?$")
    _ok(client.delete(f"/vms/{name}/disks/extra", params={"delete_volume": "true"}), "live")
    _until_shell(shell, "ls /sys/block | grep -c vdb", rb"^0\r?$")
    vm = client.get(f"/vms/{name}").json()
    assert [d["name"] for d in vm["disks"]] == ["data"] and vm["nics"] == []


def test_x86_64_disk_and_nic_hotplug(
    client: httpx.Client, corral: CorralServer, kernel_guest: KernelGuest
) -> None:
    name = _start(client, kernel_vm("chg-x86-plug", kernel_guest))
    try:
        _hotplug_disk_and_nic(client, corral, name)
    finally:
        _remove(client, name)


def test_s390x_disk_and_nic_hotplug(
    client: httpx.Client, corral: CorralServer, s390x_guest: KernelGuest
) -> None:
    name = _start(client, kernel_vm("chg-s390x-plug", s390x_guest, arch="s390x"))
    try:
        _hotplug_disk_and_nic(client, corral, name)
    finally:
        _remove(client, name)


def test_aarch64_disk_and_nic_hotplug(
    client: httpx.Client, corral: CorralServer, aarch64_guest: KernelGuest
) -> None:
    name = _start(client, kernel_vm("chg-aarch64-plug", aarch64_guest, arch="aarch64"))
    try:
        _hotplug_disk_and_nic(client, corral, name)
        # No CPU hot-plug on ARM's virt machine: refused live, fine at the next start.
        refused = client.patch(f"/vms/{name}", json={"vcpus": 2, "mode": "live"})
        assert refused.status_code == 409
        assert "cannot have vCPUs plugged in or out" in refused.json()["detail"]
        _ok(client.patch(f"/vms/{name}", json={"vcpus": 2}), "next_start")
    finally:
        _remove(client, name)


def _mem_total_kib(shell: SerialShell) -> int:
    match = re.search(rb"MemTotal:\s+(\d+) kB", shell.run("grep MemTotal /proc/meminfo"))
    assert match is not None
    return int(match.group(1))


def _online_cpus(shell: SerialShell) -> int:
    out = shell.run("grep -c ^processor /proc/cpuinfo")
    match = re.search(rb"^(\d+)\r?$", out, re.M)
    assert match is not None, out
    return int(match.group(1))


def test_x86_64_vcpus_and_memory_change_live_and_at_next_start(
    client: httpx.Client, corral: CorralServer, kernel_guest: KernelGuest
) -> None:
    spec = kernel_vm("chg-x86-size", kernel_guest, vcpus=1, max_vcpus=4, memory_mib=256,
                     max_memory_mib=512)  # fmt: skip
    name = _start(client, spec)
    try:
        shell = SerialShell(corral, name)
        assert _online_cpus(shell) == 1
        # vCPUs: plugged in live; the guest (no udev) onlines the new CPU itself.
        change = _ok(client.patch(f"/vms/{name}", json={"vcpus": 2}), "live")
        assert change["changes"] == ["vCPUs 1 → 2"] and change["vm"]["vcpus"] == 2
        _until_shell(shell, "ls /sys/devices/system/cpu", rb"\bcpu1\b")
        shell.run("echo 1 > /sys/devices/system/cpu/cpu1/online")
        assert _online_cpus(shell) == 2
        # Memory: the balloon gives the guest 128 MiB more, up to the maximum.
        before = _mem_total_kib(shell)
        _ok(client.patch(f"/vms/{name}", json={"memory_mib": 384}), "live")
        wait_until(lambda: _mem_total_kib(shell) - before > 100 * 1024 or None, 30, "the balloon")
        # Above the maximums: refused live, the VM unchanged; by default, at the next start.
        refused = client.patch(f"/vms/{name}", json={"vcpus": 6, "mode": "live"})
        assert refused.status_code == 409 and "next_start" in refused.json()["detail"]
        vm = client.get(f"/vms/{name}").json()
        assert (vm["vcpus"], vm["max_vcpus"], vm["next_start"]) == (2, 4, None)
        later = _ok(client.patch(f"/vms/{name}", json={"vcpus": 6, "memory_mib": 640}),
                    "next_start")  # fmt: skip
        assert later["vm"]["next_start"] == {
            "vcpus": 6, "max_vcpus": 6, "memory_mib": 640, "max_memory_mib": 640, "topology": None
        }  # fmt: skip
        assert later["vm"]["vcpus"] == 2
        # The next start brings them.
        assert client.post(f"/vms/{name}/stop").status_code == 200
        size = len(client.get(f"/vms/{name}/log").content)
        assert client.post(f"/vms/{name}/start").status_code == 200
        wait_log(client, name, rb"CORRAL-GUEST-BOOTED", start=size)
        vm = client.get(f"/vms/{name}").json()
        assert (vm["vcpus"], vm["memory_mib"], vm["next_start"]) == (6, 640, None)
        assert _online_cpus(SerialShell(corral, name)) == 6
        audit = client.get("/audit", params={"action": "vm.edit"}).json()["items"]
        details = [e["detail"] for e in audit if e["target"] == name]
        assert "live: vCPUs 1 → 2" in details and any(
            d.startswith("next_start: vCPUs 2 → 6") for d in details
        )
    finally:
        _remove(client, name)


def test_offline_edit_and_sata_disk_at_next_start(
    client: httpx.Client, corral: CorralServer, kernel_guest: KernelGuest
) -> None:
    name = "chg-x86-offline"
    assert client.post("/vms", json=kernel_vm(name, kernel_guest)).status_code == 201
    try:
        _ok(client.patch(f"/vms/{name}", json={"vcpus": 2, "memory_mib": 320}), "offline")
        assert client.post(f"/vms/{name}/start").status_code == 200
        wait_log(client, name, rb"CORRAL-GUEST-BOOTED")
        shell = SerialShell(corral, name)
        assert _online_cpus(shell) == 2
        # SATA cannot be hot-plugged: it waits for the next start, and says so.
        change = _ok(
            client.post(f"/vms/{name}/disks", json={"name": "slow", "size_gib": 1, "bus": "sata"}),
            "next_start",
        )
        pending = {d["name"]: d["pending"] for d in change["vm"]["disks"]}
        assert pending == {"data": None, "slow": "attach"}
        live = client.post(
            f"/vms/{name}/disks", json={"name": "s2", "size_gib": 1, "bus": "sata", "mode": "live"}
        )
        assert live.status_code == 409 and "next_start" in live.json()["detail"]
    finally:
        _remove(client, name)


def test_boot_disk_and_foreign_volumes_are_refused(
    client: httpx.Client, conn: libvirt.virConnect
) -> None:
    """A VM booting from its disk (blank: the firmware keeps looking, the VM runs)."""
    name = "chg-bootdisk"
    spec = {"name": name, "memory_mib": 128, "disks": [{"name": "root", "size_gib": 1}]}
    assert client.post("/vms", json=spec).status_code == 201
    other = "chg-other"
    assert client.post("/vms", json={**spec, "name": other}).status_code == 201
    try:
        assert client.post(f"/vms/{name}/start").status_code == 200
        before = conn.lookupByName(name).XMLDesc(0)
        refused = client.delete(f"/vms/{name}/disks/root")
        assert refused.status_code == 409, refused.text
        assert "boot disk" in refused.json()["detail"]
        volume = client.get(f"/vms/{other}").json()["disks"][0]["path"].rsplit("/", 1)[1]
        taken = client.post(f"/vms/{name}/disks", json={"name": "x", "volume": volume})
        assert taken.status_code == 409 and f"in use by VM {other}" in taken.json()["detail"]
        time.sleep(0.5)
        assert conn.lookupByName(name).XMLDesc(0) == before
    finally:
        _remove(client, name)
        _remove(client, other)


def test_memory_change_the_guest_does_not_take_is_not_reported_as_done(
    client: httpx.Client, corral: CorralServer, kernel_guest: KernelGuest
) -> None:
    """Without a balloon driver (unloaded here) the guest keeps its memory: the CLI says so
    and what the guest has, the VM keeps its sizes now and at its next start; ``--next-start``
    is the way to get the change."""
    name = _start(client, kernel_vm("chg-x86-noballoon", kernel_guest, memory_mib=512))
    try:
        shell = SerialShell(corral, name)
        before = _mem_total_kib(shell)
        out = shell.run("rmmod virtio_balloon; lsmod | grep -c balloon")
        assert re.search(rb"^0\r?$", out, re.M), out
        edit = corral.cli("vm", "edit", name, "--memory", "384M")
        assert edit.returncode == 1, edit.stdout
        assert "VM 'chg-x86-noballoon' did not take the memory change live" in edit.stderr
        assert "no virtio_balloon driver in it?) and still has 512 MiB" in edit.stderr
        assert "mode next_start" in edit.stderr and "→" not in edit.stdout + edit.stderr
        vm = client.get(f"/vms/{name}").json()
        assert (vm["memory_mib"], vm["next_start"]) == (512, None)
        assert _mem_total_kib(shell) == before
        later = corral.cli("vm", "edit", name, "--memory", "384M", "--next-start")
        assert later.returncode == 0, later.stderr
        assert "memory 512 MiB → 384 MiB — at its next start" in later.stderr + later.stdout
        assert client.get(f"/vms/{name}").json()["next_start"]["memory_mib"] == 384
        # A paused guest cannot move its balloon at all: live is refused, by default the
        # change waits for the next start.
        assert client.post(f"/vms/{name}/pause").status_code == 200
        paused = corral.cli("vm", "edit", name, "--memory", "320M", "--live")
        assert paused.returncode == 1, paused.stdout
        assert "a paused guest cannot give or take memory (resume it first)" in paused.stderr
        waits = corral.cli("vm", "edit", name, "--memory", "320M")
        assert "memory 384 MiB → 320 MiB — at its next start" in waits.stderr + waits.stdout
    finally:
        _remove(client, name)
