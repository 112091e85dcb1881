"""``host.disk_moves`` on a real libvirtd: a running TCG guest's disk block-copied into a
volume of another pool, switched over and followed by its definition; a copy stopped half-way
leaves the guest on its disk; a shut-off guest's volume cloned across pools."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import libvirt
import pytest
import pytest_asyncio
from lxml import etree

from corral.model.storage_domain import DiskSource
from corral.model.vm import BootSpec, DiskSpec, VmSpec, VmState
from corral.testbed.guest_images import KernelGuest
from corral.testbed.private_libvirtd import PrivateLibvirtd
from corral.virt import LibvirtHost

pytestmark = pytest.mark.asyncio(loop_scope="module")
MIB = 2**20
OTHER_POOL = "/var/lib/libvirt/corral-move-test"


@pytest.fixture(scope="module")
def other_pool(virt_libvirtd: PrivateLibvirtd) -> Iterator[libvirt.virStoragePool]:
    """A second directory pool on the host: where disks move to."""
    conn = libvirt.open(virt_libvirtd.uri)
    xml = (f"<pool type='dir'><name>move-test</name><target><path>{OTHER_POOL}</path>"
           "</target></pool>")  # fmt: skip
    pool = conn.storagePoolDefineXML(xml, 0)
    pool.build(0)
    pool.create(0)
    try:
        yield pool
    finally:
        for name in pool.listVolumes():
            pool.storageVolLookupByName(name).delete(0)
        pool.destroy()
        pool.undefine()
        conn.close()


def _new_volume(pool: libvirt.virStoragePool, name: str, capacity: int) -> str:
    xml = (f"<volume><name>{name}</name><capacity>{capacity}</capacity>"
           "<target><format type='qcow2'/></target></volume>")  # fmt: skip
    return str(pool.createXML(xml, 0).path())


def _disk_file(xml: str, target: str = "vda") -> str | None:
    root = etree.fromstring(xml.encode())
    return root.xpath(f"string(./devices/disk[target/@dev='{target}']/source/@file)") or None


async def _heartbeat_after(host: LibvirtHost, name: str, after: int, limit: float = 90) -> None:
    async with asyncio.timeout(limit):
        while True:
            if b"corral-heartbeat" in (await host.consoles.read_serial_log(name))[after:]:
                return
            await asyncio.sleep(0.5)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def guest(host: LibvirtHost, kernel_guest: KernelGuest) -> AsyncIterator[str]:
    spec = VmSpec(
        name="mover",
        memory_mib=256,
        disks=[DiskSpec(name="root", size_gib=0.0625)],
        nics=[],
        boot=BootSpec(source="kernel", kernel=str(kernel_guest.kernel),
                      initrd=str(kernel_guest.initrd), cmdline=kernel_guest.cmdline),
    )  # fmt: skip
    vol = await host.storage.create_blank_volume("mover-root.qcow2", 64 * MIB)
    record = await host.define_domain(spec, [vol])
    await host.start(record.uuid)
    await _heartbeat_after(host, "mover", 0)
    yield record.uuid
    if (await host.get_domain(record.uuid)).state is not VmState.SHUTOFF:
        await host.destroy(record.uuid)
    await host.undefine_domain(record.uuid)
    if await host.storage.volume_exists("mover-root.qcow2"):
        await host.storage.delete_volume("mover-root.qcow2")


async def test_a_stopped_copy_leaves_the_guest_on_its_disk(
    host: LibvirtHost, guest: str, other_pool: libvirt.virStoragePool
) -> None:
    path = _new_volume(other_pool, "aborted.qcow2", 64 * MIB)
    await host.disk_moves.start_copy(guest, "vda", DiskSource(file=path))
    assert await host.disk_moves.copy_progress(guest, "vda") is not None
    await host.disk_moves.abort_copy(guest, "vda")
    assert await host.disk_moves.copy_progress(guest, "vda") is None
    record = await host.get_domain(guest)
    assert record.disks[0].path.endswith("/mover-root.qcow2")
    other_pool.storageVolLookupByName("aborted.qcow2").delete(0)


async def test_live_copy_pivots_and_the_definition_follows(
    host: LibvirtHost, guest: str, other_pool: libvirt.virStoragePool
) -> None:
    facts = await host.disk_moves.disk_facts(guest, "vda")
    capacity = facts.capacity
    assert (capacity, facts.format) == (64 * MIB, "qcow2")
    path = _new_volume(other_pool, "moved.qcow2", capacity)
    await host.disk_moves.start_copy(guest, "vda", DiskSource(file=path))
    async with asyncio.timeout(60):
        while not (job := await host.disk_moves.copy_progress(guest, "vda")) or not job.ready:
            assert job is not None, "the copy job vanished before it was in sync"
            await asyncio.sleep(0.2)
    assert job.total > 0 and job.done == job.total
    await host.disk_moves.pivot(guest, "vda")
    assert await host.disk_moves.copy_progress(guest, "vda") is None
    record = await host.get_domain(guest)
    assert _disk_file(record.xml) == path
    # libvirt 9.0 rewrites the persistent definition at the pivot (even for a transient
    # job); Corral's own rewrite after it changes nothing then.
    assert _disk_file(record.inactive_xml) == path
    await host.disk_moves.set_disk_source(guest, "vda", DiskSource(file=path))
    assert _disk_file((await host.get_domain(guest)).inactive_xml) == path

    # The next start uses the new volume: the old one can go, the guest boots.
    await host.destroy(guest)
    await host.storage.delete_volume("mover-root.qcow2")
    mark = len(await host.consoles.read_serial_log("mover"))
    await host.start(guest)
    await _heartbeat_after(host, "mover", mark)
    assert _disk_file((await host.get_domain(guest)).xml) == path


async def test_a_shut_off_volume_is_cloned_across_pools(
    host: LibvirtHost, guest: str, other_pool: libvirt.virStoragePool
) -> None:
    await host.destroy(guest)
    source = other_pool.storageVolLookupByName("moved.qcow2").path()
    back = await host.storage.create_blank_volume("mover-root.qcow2", 64 * MIB)
    await host.disk_moves.clone_volume(source, back.path)
    await host.disk_moves.set_disk_source(guest, "vda", DiskSource(file=back.path))
    cloned = await host.storage.find_volume("mover-root.qcow2")
    assert cloned is not None and cloned.capacity_bytes == 64 * MIB
    assert _disk_file((await host.get_domain(guest)).inactive_xml) == back.path
    mark = len(await host.consoles.read_serial_log("mover"))
    await host.start(guest)
    await _heartbeat_after(host, "mover", mark)
