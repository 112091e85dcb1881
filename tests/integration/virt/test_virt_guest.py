"""One real TCG guest on the private libvirtd, shared by the tests of this module (in order):
serial log, console, screenshot, snapshots, events, reconnect, then shutdown and undefine."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from PIL import Image

from corral.errors import Conflict
from corral.model.vm import BootSpec, DiskSpec, NicSpec, VmSpec, VmState
from corral.testbed.guest_images import CURSOR_QUERY, CURSOR_REPLY, SHELL_PROMPT, KernelGuest
from corral.testbed.private_libvirtd import PrivateLibvirtd
from corral.virt import DomainEvent, LibvirtHost

pytestmark = pytest.mark.asyncio(loop_scope="module")
BOOT_TIMEOUT = 90.0


@dataclass
class Guest:
    uuid: str
    name: str
    events: list[DomainEvent] = field(default_factory=list)

    async def wait_event(self, kind: str, detail: str, after: int = 0) -> DomainEvent:
        async with asyncio.timeout(60):
            while True:
                for event in self.events[after:]:
                    ours = kind in ("connected", "disconnected") or event.uuid == self.uuid
                    if ours and event.kind == kind and event.detail == detail:
                        return event
                await asyncio.sleep(0.05)


async def _wait_log(host: LibvirtHost, name: str, needle: bytes, after: int, limit: float) -> bytes:
    """Poll the serial log (bounded) until ``needle`` appears past byte ``after``."""
    async with asyncio.timeout(limit):
        while True:
            log = await host.consoles.read_serial_log(name)
            if needle in log[after:]:
                return log
            await asyncio.sleep(0.5)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def guest(host: LibvirtHost, kernel_guest: KernelGuest) -> AsyncIterator[Guest]:
    spec = VmSpec(
        name="g1",
        memory_mib=256,
        disks=[DiskSpec(name="root", size_gib=0.0625)],  # qcow2: room for internal snapshots
        nics=[NicSpec(network="user")],
        boot=BootSpec(source="kernel", kernel=str(kernel_guest.kernel),
                      initrd=str(kernel_guest.initrd), cmdline=kernel_guest.cmdline),
        description="integration <guest> & co",
    )  # fmt: skip
    vol = await host.storage.create_blank_volume("g1-root.qcow2", 64 * 2**20)
    record = await host.define_domain(spec, [vol])
    guest = Guest(record.uuid, record.name)
    host.subscribe(guest.events.append)
    await host.start(record.uuid)
    await _wait_log(host, "g1", b"corral-heartbeat", 0, BOOT_TIMEOUT)
    yield guest
    left = {d.uuid: d for d in await host.list_domains()}
    if guest.uuid in left:  # a test failed before test_shutdown_then_undefine
        if left[guest.uuid].state is not VmState.SHUTOFF:
            await host.destroy(guest.uuid)
        await host.undefine_domain(guest.uuid)
    await host.storage.delete_volume("g1-root.qcow2")


async def test_started_guest_writes_heartbeats_to_its_log(host: LibvirtHost, guest: Guest) -> None:
    await guest.wait_event("lifecycle", "started")
    record = await host.get_domain(guest.uuid)
    assert record.state is VmState.RUNNING and record.corral_managed
    assert record.description == "integration <guest> & co"
    assert record.uptime_s is not None and record.cpu_time_s is not None
    assert [(d.name, d.target) for d in record.disks] == [("root", "vda")]
    tail = await host.consoles.read_serial_log(guest.name, tail_bytes=64)
    assert 0 < len(tail) <= 64
    whole = await host.consoles.read_serial_log(guest.name)
    lines = await host.consoles.read_serial_log(guest.name, tail_lines=3)
    assert lines.count(b"\n") in (2, 3) and lines.rstrip(b"\r\n").split(b"\n")[0] in whole
    assert len(lines) < len(whole)
    with pytest.raises(Conflict):
        await host.start(guest.uuid)  # already running


async def test_serial_console_runs_a_command(host: LibvirtHost, guest: Guest) -> None:
    console = await host.consoles.open_serial_console(guest.uuid)
    try:
        await console.write(b"\n")
        seen = b""
        async with asyncio.timeout(60):
            while SHELL_PROMPT not in seen:
                seen += await console.read()
            # Answer the shell's cursor query as a terminal would, or it eats the command.
            if CURSOR_QUERY in seen.split(SHELL_PROMPT)[-1]:
                await console.write(CURSOR_REPLY)
            await console.write(b"echo $((6*7))\n")
            while b"\n42" not in seen.replace(b"\r", b""):
                chunk = await console.read()
                if CURSOR_QUERY in chunk:
                    await console.write(CURSOR_REPLY)
                seen += chunk
    finally:
        await console.close()
    assert await console.read() == b""


async def test_screenshot_is_a_png(host: LibvirtHost, guest: Guest) -> None:
    png = await host.consoles.screenshot_png(guest.uuid)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width >= 320 and image.height >= 200


async def test_snapshots_of_the_running_guest(host: LibvirtHost, guest: Guest) -> None:
    snap = await host.create_snapshot(guest.uuid, "s1", "first <one>")
    assert (snap.name, snap.description, snap.vm_state, snap.current) == (
        "s1", "first <one>", "running", True,
    )  # fmt: skip
    await host.create_snapshot(guest.uuid, "s2", "")
    assert [s.name for s in await host.list_snapshots(guest.uuid)] == ["s1", "s2"]
    mark = len(guest.events)
    await host.revert_snapshot(guest.uuid, "s1")
    await guest.wait_event("lifecycle", "started", after=mark)
    assert [s.name for s in await host.list_snapshots(guest.uuid) if s.current] == ["s1"]
    for name in ("s2", "s1"):
        await host.delete_snapshot(guest.uuid, name)
    assert await host.list_snapshots(guest.uuid) == []
    mark_log = len(await host.consoles.read_serial_log(guest.name))
    await _wait_log(host, guest.name, b"corral-heartbeat", mark_log, 30)  # it keeps running


async def test_pause_and_resume_events(host: LibvirtHost, guest: Guest) -> None:
    mark = len(guest.events)
    await host.suspend(guest.uuid)
    await guest.wait_event("lifecycle", "suspended", after=mark)
    assert (await host.get_domain(guest.uuid)).state is VmState.PAUSED
    await host.resume(guest.uuid)
    await guest.wait_event("lifecycle", "resumed", after=mark)


async def test_reconnect_after_libvirtd_restart(
    host: LibvirtHost, guest: Guest, virt_libvirtd: PrivateLibvirtd
) -> None:
    mark = len(guest.events)
    await asyncio.to_thread(virt_libvirtd.restart_libvirtd)
    down = await guest.wait_event("disconnected", "disconnected", after=mark)
    assert down.host == "h1" and down.uuid is None
    await guest.wait_event("connected", "connected", after=mark)
    assert host.connected
    assert (await host.get_domain(guest.uuid)).state is VmState.RUNNING
    mark = len(guest.events)
    await host.suspend(guest.uuid)
    await guest.wait_event("lifecycle", "suspended", after=mark)
    await host.resume(guest.uuid)
    await guest.wait_event("lifecycle", "resumed", after=mark)


async def test_shutdown_then_undefine(host: LibvirtHost, guest: Guest) -> None:
    mark = len(guest.events)
    await host.shutdown(guest.uuid)  # ACPI power button; the guest powers off
    stopped = await guest.wait_event("lifecycle", "stopped", after=mark)
    assert stopped.reason == "shutdown"
    assert (await host.get_domain(guest.uuid)).state is VmState.SHUTOFF
    await host.start(guest.uuid)
    await guest.wait_event("lifecycle", "started", after=mark)
    await host.destroy(guest.uuid)
    destroyed = await guest.wait_event("lifecycle", "stopped", after=len(guest.events) - 1)
    assert destroyed.reason in ("destroyed", "shutdown")
    await host.undefine_domain(guest.uuid)
    await guest.wait_event("lifecycle", "undefined", after=mark)
    assert guest.uuid not in [d.uuid for d in await host.list_domains()]
