"""``LibvirtHost`` on libvirt's ``test:///default`` driver (what that driver supports)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import libvirt
import pytest

import corral.virt
from corral.errors import Conflict, HostUnreachable, InsufficientResources, NotFound
from corral.model.vm import Accelerator, BootSpec, DiskSpec, NicSpec, VmSpec, VmState
from corral.virt import DomainEvent, LibvirtHost, VolumeRef, _connection

KERNEL = BootSpec(source="kernel", kernel="/srv/k/vmlinuz", cmdline="console=ttyS0")


def test_public_names_are_exactly_the_api() -> None:
    assert sorted(corral.virt.__all__) == [
        "DomainEvent",
        "DomainRecord",
        "HEAD_BYTES",
        "ImageProbe",
        "LibvirtHost",
        "SERIAL_LOG_SUFFIX",
        "SerialConsole",
        "VolumeRef",
        "VolumeWriter",
        "ensure_event_loop_impl",
        "map_libvirt_errors",
        "probe_header",
    ]


async def test_connect_failure_says_what_to_do() -> None:
    host = LibvirtHost("gone", "qemu+unix:///system?socket=/nonexistent/corral/sock")
    with pytest.raises(HostUnreachable) as caught:
        await host.connect()
    assert "gone" in caught.value.message and "libvirtd" in caught.value.message
    assert not host.connected


async def test_calls_before_connect_are_host_unreachable() -> None:
    host = LibvirtHost("idle", "test:///default")
    with pytest.raises(HostUnreachable):
        await host.list_domains()


async def test_capabilities_and_accelerator_choice(host: LibvirtHost) -> None:
    caps = await host.capabilities()
    assert caps.cpus == 16 and caps.memory_mib > 0
    assert caps.accelerators == [Accelerator.TCG]  # the test driver offers no KVM
    assert host.accelerator_for(None) is Accelerator.TCG
    assert host.accelerator_for(Accelerator.TCG) is Accelerator.TCG
    with pytest.raises(InsufficientResources, match="KVM"):
        host.accelerator_for(Accelerator.KVM)
    forced = LibvirtHost("f", "test:///default", forced_accelerator=Accelerator.TCG)
    assert forced.accelerator_for(None) is Accelerator.TCG


async def _wait_for(events: list[DomainEvent], detail: str, uuid: str) -> DomainEvent:
    async with asyncio.timeout(10):
        while True:
            for event in events:
                if event.uuid == uuid and event.detail == detail:
                    return event
            await asyncio.sleep(0.01)


async def test_domain_lifecycle_with_events(host: LibvirtHost, unique: str) -> None:
    events: list[DomainEvent] = []
    host.subscribe(events.append)
    spec = VmSpec(name=f"life-{unique}", boot=KERNEL, description="a <b> & c",
                  nics=[NicSpec(network="user")])  # fmt: skip
    record = await host.define_domain(spec, [])
    assert record.corral_managed and record.state is VmState.SHUTOFF
    assert record.description == "a <b> & c" and record.memory_mib == 512
    await _wait_for(events, "defined", record.uuid)

    await host.start(record.uuid)
    await _wait_for(events, "started", record.uuid)
    running = await host.get_domain(spec.name)
    assert running.state is VmState.RUNNING and running.uptime_s is not None
    await host.suspend(record.uuid)
    assert (await host.get_domain(record.uuid)).state is VmState.PAUSED
    await host.resume(record.uuid)
    await _wait_for(events, "resumed", record.uuid)
    await host.destroy(record.uuid)
    stopped = await _wait_for(events, "stopped", record.uuid)
    assert stopped.reason == "destroyed" and stopped.host == "t1"
    assert (await host.get_domain(record.uuid)).uptime_s is None

    assert record.uuid in [r.uuid for r in await host.list_domains()]
    await host.undefine_domain(record.uuid)
    await _wait_for(events, "undefined", record.uuid)
    with pytest.raises(NotFound):
        await host.get_domain(record.uuid)


async def test_set_description_keeps_every_character(host: LibvirtHost, unique: str) -> None:
    record = await host.define_domain(VmSpec(name=f"desc-{unique}", boot=KERNEL), [])
    try:
        for text in ("plain", "<xml> & \"quotes\" 'too'", "ctrl\x01\x1f cr\r\n", ""):
            await host.set_description(record.uuid, text)
            assert (await host.get_domain(record.uuid)).description == text
    finally:
        await host.undefine_domain(record.uuid)


async def test_adopted_domain_is_listed_but_not_managed(host: LibvirtHost) -> None:
    record = await host.get_domain("test")  # predefined by the test driver
    assert not record.corral_managed
    assert record.accelerator is None


async def test_listing_with_known_records_reads_only_what_changed(
    host: LibvirtHost, unique: str
) -> None:
    """A sweep's listing keeps the known record of a domain whose name, state and size are
    unchanged (its XML is not read again), and reads again one whose state changed."""
    record = await host.define_domain(VmSpec(name=f"known-{unique}", boot=KERNEL), [])
    try:
        marked = dataclasses.replace(record, description="as known", xml="")
        listed = {r.uuid: r for r in await host.list_domains({record.uuid: marked})}
        assert listed[record.uuid].description == "as known"  # kept, not re-read
        assert listed["6695eb01-f6a4-8304-79aa-97f2502e193f"].name == "test"  # not known: read
        await host.start(record.uuid)
        listed = {r.uuid: r for r in await host.list_domains({record.uuid: marked})}
        assert listed[record.uuid].state is VmState.RUNNING
        assert listed[record.uuid].description == ""  # re-read: its state changed
        running = dataclasses.replace(listed[record.uuid], description="as known")
        again = {r.uuid: r for r in await host.list_domains({record.uuid: running})}
        assert again[record.uuid].description == "as known"
        assert again[record.uuid].cpu_time_s is not None  # counters refreshed
    finally:
        await host.destroy(record.uuid)
        await host.undefine_domain(record.uuid)


async def test_missing_domain_is_not_found(host: LibvirtHost) -> None:
    with pytest.raises(NotFound):
        await host.start("00000000-0000-4000-8000-00000000dead")


def _volume(name: str, fmt: str) -> VolumeRef:
    return VolumeRef(name=name, path=f"/pool/{name}", format=fmt, capacity_bytes=2**30)


async def test_snapshots_need_a_qcow2_disk(host: LibvirtHost, unique: str) -> None:
    diskless = await host.define_domain(VmSpec(name=f"nosnap-{unique}", boot=KERNEL), [])
    raw_spec = VmSpec(name=f"rawsnap-{unique}", disks=[DiskSpec(size_gib=1)])
    raw = await host.define_domain(raw_spec, [_volume("r.img", "raw")])
    try:
        with pytest.raises(Conflict, match="has no disk: snapshots are stored inside"):
            await host.create_snapshot(diskless.uuid, "s1", "")
        with pytest.raises(Conflict, match=r"not qcow2: vda \(raw format\)"):
            await host.create_snapshot(raw.uuid, "s1", "")
        assert await host.list_snapshots(diskless.uuid) == []
        assert await host.list_snapshots(raw.uuid) == []
    finally:
        await host.undefine_domain(diskless.uuid)
        await host.undefine_domain(raw.uuid)


async def test_snapshots(host: LibvirtHost, unique: str) -> None:
    spec = VmSpec(name=f"snap-{unique}", boot=KERNEL, disks=[DiskSpec(size_gib=1)])
    record = await host.define_domain(spec, [_volume(f"snap-{unique}.qcow2", "qcow2")])
    try:
        await host.start(record.uuid)
        snap = await host.create_snapshot(record.uuid, "s1", "before <upgrade>")
        assert (snap.name, snap.description, snap.current) == ("s1", "before <upgrade>", True)
        assert snap.vm_state == "running"
        await host.create_snapshot(record.uuid, "s2", "")
        assert [s.name for s in await host.list_snapshots(record.uuid)] == ["s1", "s2"]
        await host.revert_snapshot(record.uuid, "s1")
        current = [s.name for s in await host.list_snapshots(record.uuid) if s.current]
        assert current == ["s1"]
        await host.delete_snapshot(record.uuid, "s2")
        with pytest.raises(NotFound):
            await host.delete_snapshot(record.uuid, "s2")
        assert [s.name for s in await host.list_snapshots(record.uuid)] == ["s1"]
    finally:
        await host.destroy(record.uuid)
        await host.undefine_domain(record.uuid)


async def test_screenshot_is_png(host: LibvirtHost) -> None:
    png = await host.consoles.screenshot_png("test")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


async def test_pool_and_volumes(host: LibvirtHost, unique: str) -> None:
    await host.storage.ensure_pool()
    await host.storage.ensure_pool()  # idempotent
    blank = await host.storage.create_blank_volume(f"b-{unique}.qcow2", 2**20)
    assert (blank.format, blank.capacity_bytes) == ("qcow2", 2**20)
    assert blank.path == f"/corral-test/images/b-{unique}.qcow2"
    with pytest.raises(Conflict):
        await host.storage.create_blank_volume(f"b-{unique}.qcow2", 2**20)
    clone = await host.storage.create_linked_clone(f"c-{unique}.qcow2", f"b-{unique}.qcow2")
    assert clone.backing == blank.path and clone.capacity_bytes == 2**20
    names = [v.name for v in await host.storage.list_volumes()]
    assert {f"b-{unique}.qcow2", f"c-{unique}.qcow2"} <= set(names)
    assert await host.storage.volume_exists(f"c-{unique}.qcow2")
    await host.storage.delete_volume(f"c-{unique}.qcow2")
    await host.storage.delete_volume(f"b-{unique}.qcow2")
    assert not await host.storage.volume_exists(f"b-{unique}.qcow2")
    with pytest.raises(NotFound):
        await host.storage.delete_volume(f"b-{unique}.qcow2")
    with pytest.raises(NotFound):
        await host.storage.create_linked_clone(f"x-{unique}.qcow2", "no-such-base.qcow2")


async def test_blank_volume_larger_than_the_pool(host: LibvirtHost, unique: str) -> None:
    from corral.errors import InsufficientResources

    with pytest.raises(InsufficientResources, match="GiB free"):
        await host.storage.create_blank_volume(f"huge-{unique}.qcow2", 2**60)


async def test_nat_network_is_created_once(host: LibvirtHost) -> None:
    first = await host.ensure_nat_network()
    assert first == "corral-nat"
    assert await host.ensure_nat_network() == "corral-nat"


async def test_serial_log_of_unknown_vm_is_empty(host: LibvirtHost) -> None:
    assert await host.consoles.read_serial_log("never-existed") == b""


async def test_define_with_nat_nic_uses_the_nat_network(host: LibvirtHost, unique: str) -> None:
    spec = VmSpec(name=f"nat-{unique}", boot=KERNEL, nics=[NicSpec(network="nat")],
                  disks=[DiskSpec(name="root", size_gib=1)])  # fmt: skip
    vol = await host.storage.create_blank_volume(f"nat-{unique}.qcow2", 2**20)
    record = await host.define_domain(spec, [vol])
    try:
        assert "<source network='corral-nat'/>" in record.xml
        assert [(d.name, d.target, d.path) for d in record.disks] == [("root", "vda", vol.path)]
    finally:
        await host.undefine_domain(record.uuid)
        await host.storage.delete_volume(vol.name)


def test_a_lost_connection_is_closed_only_once_no_call_is_inside_it() -> None:
    """Closing a virConnect frees its RPC client under any call still in it (the manager
    crashed so when keep-alive dropped a cut-off host): _release waits for the worker threads
    inside the connection, counted by the threads themselves."""
    conn = libvirt.open("test:///default")
    entered, leave = threading.Event(), threading.Event()

    def call() -> None:
        with _connection._IN_FLIGHT.call(conn):
            entered.set()
            leave.wait(10)

    worker = threading.Thread(target=call)
    worker.start()
    assert entered.wait(10)
    assert not _connection._IN_FLIGHT.wait_idle(conn, 0.2)
    releaser = threading.Thread(target=_connection._release, args=(conn, []))
    releaser.start()
    releaser.join(0.3)
    assert releaser.is_alive(), "closed while a call was inside the connection"
    assert conn.isAlive()
    leave.set()
    worker.join(10)
    releaser.join(10)
    assert not releaser.is_alive()
    assert _connection._IN_FLIGHT.wait_idle(conn, 0)


async def test_short_calls_are_not_queued_behind_long_ones() -> None:
    """Unbounded calls (an import of gigabytes, a migration) hold a thread for minutes: they
    get threads of their own. In asyncio's default pool (six threads on two cores) ten imports
    queued every short call behind them, the database's too, and task leases lapsed."""
    calls = _connection.ManagedConnection("t1", "test:///default", 10, lambda _e: None)
    await calls.connect()
    release = threading.Event()
    try:
        long_ones = [
            asyncio.create_task(calls.run("import", lambda _c: release.wait(30), bounded=False))
            for _ in range(40)
        ]
        async with asyncio.timeout(5):
            assert await calls.run("read", lambda c: c.getHostname())
            assert await asyncio.to_thread(lambda: "a database call")
        release.set()
        assert await asyncio.gather(*long_ones) == [True] * 40
    finally:
        release.set()
        await calls.close()
