"""Guests of other architectures through Corral under TCG: s390x and aarch64 boot to their
heartbeat on the serial console; a 16-vCPU x86_64 guest sees its 16 CPUs (the 64-vCPU one,
≈ 75-150 s on two cores, is bench/big_guest.py); what a host cannot run is refused, naming what
to change or install."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import libvirt
import pytest
from lxml import etree

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_images import KernelGuest
from tests.integration.api._support import SerialShell, kernel_vm, wait_log


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


def _boot(client: httpx.Client, spec: dict[str, Any], timeout: float = 90) -> float:
    """Create and start; seconds from the start call to the first heartbeat."""
    made = client.post("/vms", json=spec)
    assert made.status_code == 201, made.text
    started = time.monotonic()
    answer = client.post(f"/vms/{spec['name']}/start")
    assert answer.status_code == 200, answer.text
    wait_log(client, spec["name"], rb"corral-heartbeat \d+", timeout=timeout)
    return time.monotonic() - started


def _remove(client: httpx.Client, name: str) -> None:
    client.post(f"/vms/{name}/stop")
    client.delete(f"/vms/{name}", params={"delete_disks": "true"})


def _xml(conn: libvirt.virConnect, name: str) -> etree._Element:
    return etree.fromstring(conn.lookupByName(name).XMLDesc(0).encode())


def test_s390x_guest_boots_to_its_heartbeat(
    client: httpx.Client, corral: CorralServer, conn: libvirt.virConnect, s390x_guest: KernelGuest
) -> None:
    name = "arch-s390x"
    spec = kernel_vm(name, s390x_guest, arch="s390x")
    try:
        seconds = _boot(client, spec)
        print(f"s390x: heartbeat {seconds:.1f} s after start")
        vm = client.get(f"/vms/{name}").json()
        assert vm["arch"] == "s390x" and vm["machine"].startswith("s390-ccw-virtio")
        assert vm["accelerator"] == "tcg"
        xml = _xml(conn, name)
        assert xml.find("devices/serial/target").get("type") == "sclp-serial"
        assert xml.find("devices/disk/address").get("type") == "ccw"  # virtio-ccw, no PCI
        assert xml.find("devices/graphics") is None  # no screen on s390x
        shell = SerialShell(corral, name)
        assert b"vda" in shell.run("ls /sys/block")
    finally:
        _remove(client, name)


def test_aarch64_guest_boots_to_its_heartbeat(
    client: httpx.Client, corral: CorralServer, conn: libvirt.virConnect, aarch64_guest: KernelGuest
) -> None:
    name = "arch-aarch64"
    spec = kernel_vm(name, aarch64_guest, arch="aarch64", vcpus=2)
    try:
        seconds = _boot(client, spec)
        print(f"aarch64: heartbeat {seconds:.1f} s after start")
        vm = client.get(f"/vms/{name}").json()
        assert vm["arch"] == "aarch64" and vm["machine"].startswith("virt")
        assert vm["cpu"]["model"] == "cortex-a57"
        xml = _xml(conn, name)
        assert xml.find("devices/serial/target/model").get("name") == "pl011"
        assert xml.find("devices/disk/address").get("type") == "pci"
        assert xml.find("os").get("firmware") is None  # direct kernel boot needs no UEFI
        shell = SerialShell(corral, name)
        out = shell.run("ls /sys/block; grep -c ^processor /proc/cpuinfo")
        assert b"vda" in out and re.search(rb"^2\r?$", out, re.M), out
    finally:
        _remove(client, name)


def test_x86_64_guest_with_16_vcpus_sees_them_all(
    client: httpx.Client, corral: CorralServer, kernel_guest: KernelGuest
) -> None:
    """2 sockets x 4 cores x 2 threads on q35, 1 GiB. Placed on the local host by name: the
    placement policy's CPU overcommit (4 vCPUs per CPU) keeps a two-core host from being
    chosen for 16 vCPUs. The 64-vCPU run (≈ 75-150 s of boot under TCG on two cores) is
    ``bench/big_guest.py``."""
    name = "arch-x86-16cpu"
    spec = kernel_vm(
        name,
        kernel_guest,
        host="local",
        disk_gib=None,
        vcpus=16,
        memory_mib=1024,
        machine="q35",
        cpu={"topology": {"sockets": 2, "cores": 4, "threads": 2}},
    )
    try:
        seconds = _boot(client, spec, timeout=300)
        print(f"x86_64 with 16 vCPUs: heartbeat {seconds:.1f} s after start")
        assert client.get(f"/vms/{name}").json()["vcpus"] == 16
        shell = SerialShell(corral, name)
        out = shell.run("cat /sys/devices/system/cpu/online; grep -c ^processor /proc/cpuinfo")
        assert b"0-15" in out and re.search(rb"^16\r?$", out, re.M), out
    finally:
        _remove(client, name)


REFUSED: list[tuple[str, dict[str, Any], int, str]] = [
    ("unknown arch", {"arch": "vax"}, 422, "arch"),
    ("arch without emulator", {"arch": "ppc64"}, 409, "install qemu-system-ppc"),
    ("machine not offered", {"arch": "s390x", "machine": "q35"}, 409, "s390-ccw-virtio"),
    ("vcpus above the machine's limit", {"arch": "s390x", "vcpus": 249}, 409, "at most 248"),
    ("topology product", {"vcpus": 4, "cpu": {"topology": {"sockets": 1, "cores": 2,
                                                           "threads": 1}}}, 422, "equal 4"),
    ("memory above max", {"memory_mib": 512, "max_memory_mib": 256}, 422, "max_memory_mib"),
    ("nested s390x under tcg", {"arch": "s390x", "cpu": {"nested": True}}, 409, "TCG"),
    ("cpu model not offered", {"arch": "aarch64", "cpu": {"model": "z14"}}, 409, "cortex-a57"),
    ("vcpu hot-plug on aarch64", {"arch": "aarch64", "max_vcpus": 2}, 409, "hot-plug"),
    ("no sata on s390x", {"arch": "s390x", "disks": [{"name": "d", "size_gib": 1,
                                                      "bus": "sata"}]}, 409, "virtio"),
    ("kvm for s390x", {"arch": "s390x", "accelerator": "kvm"}, 409, "accelerator 'tcg'"),
    ("threads on s390x", {"arch": "s390x", "vcpus": 4, "cpu": {"topology": {
        "sockets": 1, "cores": 2, "threads": 2}}}, 409, "thread(s) per core"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "status", "words"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_what_the_host_cannot_run_is_refused_clearly(
    client: httpx.Client,
    conn: libvirt.virConnect,
    kernel_guest: KernelGuest,
    extra: dict[str, Any],
    status: int,
    words: str,
) -> None:
    before = {d.name() for d in conn.listAllDomains()}
    # Asked of the host by name: what it cannot run, not what the placement policy allows.
    spec = kernel_vm("arch-refused", kernel_guest, host="local", **extra)
    answer = client.post("/vms", json=spec)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert words in answer.json()["detail"], answer.json()["detail"]
    assert {d.name() for d in conn.listAllDomains()} == before
    assert client.get("/vms/arch-refused").status_code == 404


def test_x86_64_nested_under_tcg_gives_the_guest_svm(
    client: httpx.Client, corral: CorralServer, kernel_guest: KernelGuest
) -> None:
    """TCG emulates AMD's SVM: a nested VM's guest sees svm in its CPU flags."""
    name = "arch-nested"
    spec = kernel_vm(name, kernel_guest, disk_gib=None, cpu={"nested": True})
    try:
        _boot(client, spec)
        assert client.get(f"/vms/{name}").json()["cpu"]["nested"] is True
        out = SerialShell(corral, name).run("grep -c -w svm /proc/cpuinfo")
        assert re.search(rb"^[1-9]\d*\r?$", out, re.M), out
    finally:
        _remove(client, name)


def test_x86_64_nested_under_kvm_follows_what_the_host_says(
    client: httpx.Client, kernel_guest: KernelGuest
) -> None:
    """Where the host says KVM nests (its CPU passes vmx/svm on), the VM is defined; where it
    does not (this machine), the refusal says how to enable it. Defined only, never started."""
    guests = client.get("/hosts/local").json()["capabilities"]["guests"]
    x86 = next(g for g in guests if g["arch"] == "x86_64")
    spec = kernel_vm("arch-nested-kvm", kernel_guest, accelerator="kvm", cpu={"nested": True})
    answer = client.post("/vms", json=spec)
    if "kvm" in x86["nested"]:
        try:
            assert answer.status_code == 201, answer.text
            assert answer.json()["cpu"]["nested"] is True
        finally:
            _remove(client, "arch-nested-kvm")
        return
    assert answer.status_code == 409, answer.text
    detail = answer.json()["detail"]
    assert "nested" in detail and ("nested=1" in detail or "KVM" in detail), detail


def test_aarch64_disk_boot_goes_through_uefi(
    client: httpx.Client, conn: libvirt.virConnect
) -> None:
    """Booting from a disk, an aarch64 VM gets UEFI (qemu-efi-aarch64's AAVMF, picked by
    libvirt from the firmware descriptors) with its own variables store; the firmware's banner
    shows on the serial console (the blank disk then has nothing to boot)."""
    name = "arch-aarch64-uefi"
    spec = {"name": name, "arch": "aarch64", "memory_mib": 256,
            "disks": [{"name": "root", "size_gib": 1}], "nics": [{"network": "user"}]}  # fmt: skip
    made = client.post("/vms", json=spec)
    assert made.status_code == 201, made.text
    try:
        assert client.post(f"/vms/{name}/start").status_code == 200
        wait_log(client, name, rb"UEFI firmware", timeout=60)
        inactive = conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        assert etree.fromstring(inactive.encode()).find("os").get("firmware") == "efi"
        os_element = _xml(conn, name).find("os")  # as started: the firmware libvirt chose
        assert os_element.findtext("loader", "").endswith("AAVMF_CODE.fd")
        assert os_element.findtext("nvram", "").endswith(f"{name}_VARS.fd")
    finally:
        _remove(client, name)


def test_host_show_lists_s390x_and_aarch64(corral: CorralServer) -> None:
    """The real CLI against the real server: the architectures the private libvirtd runs."""
    table = corral.cli("host", "show", "local")
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines() if line.strip()}
    assert rows["s390x"][1:5] == ["tcg", "s390-ccw-virtio", "248", "ttysclp0"]
    assert rows["aarch64"][1:5] == ["tcg", "virt", "512", "ttyAMA0"]
    assert rows["x86_64"][4] == "ttyS0"
    detail = corral.cli("host", "show", "local", "--arch", "aarch64")
    assert detail.returncode == 0, detail.stderr
    assert "cortex-a57" in detail.stdout and "virt (= virt-7.2, 512 vCPUs)" in detail.stdout
