"""What users hear when a device change or a screen cannot be had, on real guests: Corral's
sentences naming the VM and what to do, never libvirt's words (issue 14 item 6)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from tests.integration.api._support import SerialShell, kernel_vm, wait_log

#: Fragments of libvirt's and QEMU's own messages, none of which may reach a user.
LIBVIRT_WORDS = (
    "no device found",
    "device not found",
    "Requested operation is not valid",
    "internal error",
    "unable to execute QEMU command",
    "no screens to take screenshot from",
    "of domain ",
    "libvirt",
)


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


def _create(client: httpx.Client, spec: dict[str, Any]) -> str:
    made = client.post("/vms", json=spec)
    assert made.status_code == 201, made.text
    assert client.post(f"/vms/{spec['name']}/start").status_code == 200
    return str(spec["name"])


def _remove(client: httpx.Client, name: str) -> None:
    client.post(f"/vms/{name}/stop")
    client.delete(f"/vms/{name}", params={"delete_disks": "true"})


def _said(answer: Any) -> str:
    """What a CLI run printed, checked for libvirt's words."""
    text = f"{answer.stdout}{answer.stderr}"
    assert not [w for w in LIBVIRT_WORDS if w in text], text
    return text


def test_nic_plugged_in_after_a_disk_left_the_definition_can_be_unplugged(
    client: httpx.Client, corral: CorralServer, kernel_guest: KernelGuest
) -> None:
    """A disk detached for the next start keeps its PCIe slot in the guest, so a NIC plugged
    in then sits in another slot in the guest than in the definition; its detach used to end
    in libvirt's "no device found at address '0000:05:00.0'"."""
    name = _create(client, kernel_vm("err-q35-nic", kernel_guest, machine="q35"))
    try:
        wait_log(client, name, rb"CORRAL-GUEST-BOOTED")
        assert corral.cli("vm", "disk", "attach", name, "extra", "--size", "1G").returncode == 0
        later = corral.cli("vm", "disk", "detach", name, "extra", "--next-start", "--yes")
        assert later.returncode == 0, later.stderr
        assert corral.cli("vm", "nic", "attach", name, "--network", "user").returncode == 0
        (mac,) = [n["mac"] for n in client.get(f"/vms/{name}").json()["nics"]]
        detach = corral.cli("vm", "nic", "detach", name, mac, "--yes")
        assert detach.returncode == 0, _said(detach)
        assert f"network interface {mac} detached — live" in _said(detach)
        shell = SerialShell(corral, name)
        assert re.search(rb"^lo\r?$", shell.run("ls /sys/class/net"), re.M)
        assert client.get(f"/vms/{name}").json()["nics"] == []
    finally:
        _remove(client, name)


def test_unplugs_a_guest_does_not_answer_are_said_in_corral_words(
    client: httpx.Client, corral: CorralServer
) -> None:
    """A VM booting a blank disk runs its firmware forever: nothing in it answers an unplug
    request. The disk detach and a NIC detach after it say which device stays where, why,
    and what to do; both devices leave at the next start."""
    name = _create(client, {"name": "err-deaf", "memory_mib": 128, "machine": "q35",
                            "disks": [{"name": "root", "size_gib": 1}], "nics": []})  # fmt: skip
    try:
        assert corral.cli("vm", "disk", "attach", name, "extra", "--size", "1G").returncode == 0
        disk = corral.cli("vm", "disk", "detach", name, "extra", "--yes")
        assert disk.returncode == 1
        text = _said(disk)
        assert (
            "VM 'err-deaf' did not release its disk vdb: the guest did not answer the unplug "
            "request within 20 s" in text
        ), text
        assert "its volume stays" in text and "shut the VM down" in text
        assert corral.cli("vm", "nic", "attach", name, "--network", "user").returncode == 0
        (mac,) = [n["mac"] for n in client.get(f"/vms/{name}").json()["nics"]]
        nic = corral.cli("vm", "nic", "detach", name, mac, "--yes")
        assert nic.returncode == 1
        text = _said(nic)
        assert f"VM 'err-deaf' did not release its network interface {mac}: the guest" in text
        assert "volume" not in text
        vm = client.get(f"/vms/{name}").json()
        assert {d["name"]: d["pending"] for d in vm["disks"]} == {"root": None, "extra": "detach"}
        assert [n["pending"] for n in vm["nics"]] == ["detach"]
    finally:
        _remove(client, name)


def test_s390x_screen_is_refused_up_front(
    client: httpx.Client, corral: CorralServer, s390x_guest: KernelGuest
) -> None:
    """s390x VMs have no graphics device: a screenshot or a console ticket says so and points
    to the serial console, running or not."""
    name = "err-s390x"
    made = client.post("/vms", json=kernel_vm(name, s390x_guest, arch="s390x"))
    assert made.status_code == 201, made.text
    try:
        expected = (
            "VM 'err-s390x' has no screen (s390x VMs get no graphics device): use its serial "
            "console instead (`corral vm console err-s390x`"
        )
        for state in ("shutoff", "running"):
            if state == "running":
                assert client.post(f"/vms/{name}/start").status_code == 200
                wait_until(
                    lambda: client.get(f"/vms/{name}").json()["state"] == "running" or None,
                    30,
                    "the VM to run",
                )
            shot = corral.cli("vm", "screenshot", name, "-o", "-")
            assert shot.returncode == 1 and expected in _said(shot), (state, shot.stderr)
            ticket = client.post(f"/vms/{name}/console/ticket")
            assert ticket.status_code == 409, ticket.text
            assert ticket.json()["detail"].startswith(expected)
    finally:
        _remove(client, name)
