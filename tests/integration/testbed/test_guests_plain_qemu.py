"""The test guests also boot under plain ``qemu-system-x86_64 -accel tcg`` (no libvirt)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.testbed.guest_domains import SerialLog, wait_until
from corral.testbed.guest_images import (
    BOOT_MARKER,
    HEARTBEAT_RE,
    POWEROFF_MARKER,
    DiskGuest,
    KernelGuest,
)

pytestmark = pytest.mark.integration


def guest_args(guest: KernelGuest | DiskGuest) -> list[str]:
    if isinstance(guest, KernelGuest):
        return [
            "-kernel",
            str(guest.kernel),
            "-initrd",
            str(guest.initrd),
            "-append",
            guest.cmdline,
        ]
    # snapshot=on: writes go to a temporary file, the shared image stays untouched and unlocked.
    return ["-drive", f"file={guest.disk},format=qcow2,if=virtio,snapshot=on"]


@pytest.fixture
def qemu(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.kill()
        process.wait()


@pytest.mark.parametrize("kind", ["kernel", "disk"])
def test_guest_boots_and_obeys_the_power_button(
    kind: str,
    qemu: list[subprocess.Popen[bytes]],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    guest: KernelGuest | DiskGuest = request.getfixturevalue(f"{kind}_guest")
    log, monitor = tmp_path / "serial.log", tmp_path / "monitor.sock"
    command = ["qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-display", "none"]
    command += ["-serial", f"file:{log}", "-monitor", f"unix:{monitor},server=on,wait=off"]
    process = subprocess.Popen([*command, *guest_args(guest)], stdin=subprocess.DEVNULL)
    qemu.append(process)
    serial = SerialLog(log)
    booted = serial.wait_for(BOOT_MARKER + b" source=" + kind.encode(), 60)
    serial.wait_for(HEARTBEAT_RE, 30, start=booted.end())

    with socket.socket(socket.AF_UNIX) as hmp:
        hmp.connect(str(monitor))
        hmp.sendall(b"system_powerdown\n")
        wait_until(lambda: process.poll() is not None, 20, "QEMU exit after the power button")
    assert process.returncode == 0
    assert POWEROFF_MARKER in serial.read()
