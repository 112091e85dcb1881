"""What ``corral vm create`` gives a VM when options are left out, seen by real QEMU guests."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_images import KernelGuest
from tests.integration.api._support import SerialShell, wait_log, wait_state


def _ok(corral: CorralServer, *args: str) -> str:
    done = corral.cli(*args)
    assert done.returncode == 0, f"corral {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _kernel_args(guest: KernelGuest) -> list[str]:
    return ["--memory", "256M", "--kernel", str(guest.kernel), "--initrd", str(guest.initrd),
            "--cmdline", guest.cmdline, "--accelerator", "tcg", "--start"]  # fmt: skip


@pytest.fixture
def cleanup(corral: CorralServer) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        corral.cli("vm", "stop", name)
        corral.cli("vm", "delete", name, "--delete-disks", "--yes")


def test_a_vm_created_without_nic_options_has_a_network_card(
    corral: CorralServer, kernel_guest: KernelGuest, cleanup: list[str]
) -> None:
    cleanup += ["netted", "unnetted"]
    _ok(corral, "vm", "create", "netted", *_kernel_args(kernel_guest))
    (nic,) = json.loads(_ok(corral, "--json", "vm", "show", "netted"))["nics"]
    # Corral's NAT network where the host can have it (this private libvirtd can).
    assert (nic["network"], nic["model"]) == ("corral-nat", "virtio")
    with corral.client() as client:
        wait_log(client, "netted", rb"corral-heartbeat \d+")
    seen = SerialShell(corral, "netted").run("cat /sys/class/net/eth0/address")
    assert re.search(re.escape(nic["mac"].encode()), seen), seen

    _ok(corral, "vm", "create", "unnetted", "--no-nic", *_kernel_args(kernel_guest))
    assert json.loads(_ok(corral, "--json", "vm", "show", "unnetted"))["nics"] == []
    with corral.client() as client:
        wait_log(client, "unnetted", rb"corral-heartbeat \d+")
    assert b"eth0" not in SerialShell(corral, "unnetted").run("ls /sys/class/net")


def test_a_vm_with_only_an_empty_cdrom_drive_runs(corral: CorralServer, cleanup: list[str]) -> None:
    cleanup.append("drive-only")
    _ok(corral, "vm", "create", "drive-only", "--memory", "128M", "--cdrom-drive",
        "--accelerator", "tcg", "--no-nic", "--start")  # fmt: skip
    with corral.client() as client:
        wait_state(client, "drive-only", "running")
        vm = client.get("/vms/drive-only").json()
    assert [(d["device"], d["path"]) for d in vm["disks"]] == [("cdrom", "")]
