"""The test guests boot under TCG through the private libvirtd and behave as documented."""

from __future__ import annotations

import io
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest
from lxml import etree
from PIL import Image

from corral.testbed.guest_domains import SerialLog, guest_domain_xml, serial_log_path, wait_until
from corral.testbed.guest_images import (
    BOOT_MARKER,
    CANARY,
    CANARY_COPIES,
    CANARY_FILE,
    HEARTBEAT_RE,
    POWEROFF_MARKER,
    DiskGuest,
    KernelGuest,
    make_overlay,
)
from corral.testbed.private_libvirtd import PrivateLibvirtd

pytestmark = pytest.mark.integration

BOOT_TIMEOUT = 60  # ~3 s when the machine is idle; TCG on two shared cores can be much slower


@dataclass
class RunningGuest:
    name: str
    dom: libvirt.virDomain
    log: SerialLog

    def wait_booted(self) -> int:
        """Waits for the boot marker; returns the log offset just after it."""
        return self.log.wait_for(BOOT_MARKER, BOOT_TIMEOUT).end()

    def heartbeat_after(self, offset: int, timeout: float = 30) -> int:
        return int(self.log.wait_for(HEARTBEAT_RE, timeout, start=offset).group(1))

    def last_heartbeat(self) -> int:
        counts = HEARTBEAT_RE.findall(self.log.read())
        return int(counts[-1]) if counts else 0

    def wait_heartbeat_above(self, count: int, timeout: float = 30) -> int:
        def probe() -> int | None:
            last = self.last_heartbeat()
            return last if last > count else None

        return wait_until(probe, timeout, f"a heartbeat above {count} from {self.name}")


StartGuest = Callable[..., RunningGuest]


@pytest.fixture
def start_guest(
    conn: libvirt.virConnect, private_libvirtd: PrivateLibvirtd, tmp_path: Path
) -> Iterator[StartGuest]:
    names: list[str] = []

    def start(guest: KernelGuest | DiskGuest, extra_cmdline: str = "") -> RunningGuest:
        name = f"tb-{uuid.uuid4().hex[:8]}"
        disk = None
        if isinstance(guest, DiskGuest):
            disk = make_overlay(guest.disk, tmp_path / f"{name}.qcow2")
        xml = guest_domain_xml(name, guest, disk=disk, extra_cmdline=extra_cmdline)
        # Persistent (define + create) so a powered-off guest can still be asked for its state.
        dom = conn.defineXML(xml)
        names.append(name)
        dom.create()
        log = SerialLog(private_libvirtd.host_path(serial_log_path(name)))
        return RunningGuest(name, dom, log)

    yield start
    # A fresh connection: the test may have restarted libvirtd under the fixture's one.
    cleanup = libvirt.open(private_libvirtd.uri)
    try:
        for name in names:
            dom = cleanup.lookupByName(name)
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    finally:
        cleanup.close()


@contextmanager
def serial_console(conn: libvirt.virConnect, dom: libvirt.virDomain) -> Iterator[libvirt.virStream]:
    """The guest's serial console as a libvirt stream (output is read from the log instead).

    Keep it open until the answer arrives: QEMU notices a client on its pty only by polling once
    a second, and input written by a client that has already gone is never read.
    """
    stream = conn.newStream(0)
    dom.openConsole(None, stream, 0)
    try:
        yield stream
    finally:
        stream.abort()


def screenshot(conn: libvirt.virConnect, dom: libvirt.virDomain) -> Image.Image:
    stream = conn.newStream(0)
    dom.screenshot(stream, 0, 0)
    chunks = []
    while chunk := stream.recv(1 << 18):
        chunks.append(chunk)
    stream.finish()
    image = Image.open(io.BytesIO(b"".join(chunks)))
    image.load()
    return image


def lit_pixels(image: Image.Image) -> int:
    """Pixels brighter than the console background (text on a black VGA screen)."""
    histogram = image.convert("L").histogram()
    return sum(histogram[41:])


@pytest.mark.parametrize("kind", ["kernel", "disk"])
def test_guest_boots_to_a_heartbeat(
    kind: str, start_guest: StartGuest, request: pytest.FixtureRequest
) -> None:
    guest = start_guest(request.getfixturevalue(f"{kind}_guest"))
    booted = guest.log.wait_for(re.compile(rb"CORRAL-GUEST-BOOTED source=(\w+)"), BOOT_TIMEOUT)
    assert booted.group(1).decode() == kind
    first = guest.heartbeat_after(booted.end())
    # A higher count later proves the loop keeps running.
    guest.wait_heartbeat_above(first, timeout=15)


def test_shell_on_the_serial_console_answers(
    conn: libvirt.virConnect, start_guest: StartGuest, kernel_guest: KernelGuest
) -> None:
    guest = start_guest(kernel_guest)
    offset = guest.wait_booted()
    with serial_console(conn, guest.dom) as console:
        console.send(b"echo $((6*7))\n")
        guest.log.wait_for(re.compile(rb"\n42\r?\n"), 30, start=offset)
        console.send(f"grep -c {CANARY.decode()} {CANARY_FILE}\n".encode())
        guest.log.wait_for(re.compile(rb"\n%d\r?\n" % CANARY_COPIES), 30, start=offset)


def test_acpi_shutdown_powers_the_guest_off(
    start_guest: StartGuest, kernel_guest: KernelGuest
) -> None:
    guest = start_guest(kernel_guest)
    guest.wait_booted()
    guest.dom.shutdown()  # no guest agent: libvirt presses the ACPI power button
    wait_until(lambda: guest.dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF, 20, "guest power-off")
    assert guest.dom.state()[1] == libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN
    assert POWEROFF_MARKER in guest.log.read()


def test_running_guest_survives_a_libvirtd_restart(
    private_libvirtd: PrivateLibvirtd, start_guest: StartGuest, kernel_guest: KernelGuest
) -> None:
    guest = start_guest(kernel_guest)
    guest.heartbeat_after(guest.wait_booted())
    pid_file = private_libvirtd.host_path(f"/run/libvirt/qemu/{guest.name}.pid")
    qemu_pid = pid_file.read_text().strip()

    private_libvirtd.restart_libvirtd()

    fresh = libvirt.open(private_libvirtd.uri)
    try:
        dom = fresh.lookupByName(guest.name)
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    finally:
        fresh.close()
    assert pid_file.read_text().strip() == qemu_pid
    guest.wait_heartbeat_above(guest.last_heartbeat(), timeout=15)


def test_vga_console_shows_the_heartbeat(
    conn: libvirt.virConnect, start_guest: StartGuest, kernel_guest: KernelGuest
) -> None:
    guest = start_guest(kernel_guest)
    guest.heartbeat_after(guest.wait_booted())
    first = screenshot(conn, guest.dom)
    assert lit_pixels(first) > 500, "the VGA console is blank"
    # The heartbeat line printed every second changes the screen.
    wait_until(
        lambda: screenshot(conn, guest.dom).tobytes() != first.tobytes(),
        15,
        "a change on the VGA console",
        interval=0.5,
    )


def test_scroll_mode_keeps_the_heartbeat_on_serial(
    conn: libvirt.virConnect, start_guest: StartGuest, kernel_guest: KernelGuest
) -> None:
    guest = start_guest(kernel_guest, extra_cmdline="corral.scroll=1")
    guest.heartbeat_after(guest.wait_booted())
    # Keeps changing: three times in a row a new frame differs from the one before. Each wait
    # is bounded; back-to-back screenshots can land between two writes of a loaded guest.
    frames = [screenshot(conn, guest.dom).tobytes()]

    def changed() -> bytes | None:
        frame = screenshot(conn, guest.dom).tobytes()
        return frame if frame != frames[-1] else None

    for _ in range(3):
        frames.append(wait_until(changed, 10, "the VGA console to scroll", interval=0.05))
    assert b"corral-scroll" not in guest.log.read()


def test_hotplugged_virtio_disk_appears_in_the_guest(
    conn: libvirt.virConnect, start_guest: StartGuest, kernel_guest: KernelGuest, tmp_path: Path
) -> None:
    guest = start_guest(kernel_guest)
    offset = guest.wait_booted()
    image = tmp_path / "extra.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "16M"], check=True)
    disk = etree.Element("disk", type="file", device="disk")
    etree.SubElement(disk, "driver", name="qemu", type="qcow2")
    etree.SubElement(disk, "source", file=str(image))
    etree.SubElement(disk, "target", dev="vdb", bus="virtio")
    guest.dom.attachDeviceFlags(
        etree.tostring(disk, encoding="unicode"), libvirt.VIR_DOMAIN_AFFECT_LIVE
    )
    # The guest names the first virtio disk vda; 16 MiB = 32768 sectors. It waits for the disk
    # itself, so the command can be typed right after the attach.
    with serial_console(conn, guest.dom) as console:
        console.send(
            b"until [ -e /sys/block/vda ]; do usleep 100000; done; cat /sys/block/vda/size\n"
        )
        guest.log.wait_for(re.compile(rb"\n32768\r?\n"), 30, start=offset)
