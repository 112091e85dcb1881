"""What a failed migration made on its destination, deleted again — on libvirt's
test:///default driver as the destination host: only the paths it made, never one a domain
there uses, and the serial log only when the migration began it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio

from corral.services.migrations.leftovers import remove_made
from corral.virt import LibvirtHost

MIB = 2**20


@pytest_asyncio.fixture
async def host() -> AsyncIterator[LibvirtHost]:
    h = LibvirtHost("h2", "test:///default", pool_dir="/corral-test/images")
    await h.connect()
    try:
        yield h
    finally:
        await h.close()


def _domain_xml(name: str, disk: str) -> str:
    return (
        f"<domain type='test'><name>{name}</name><memory>65536</memory>"
        "<os><type>hvm</type></os><devices>"
        f"<disk type='file' device='disk'><source file='{disk}'/><target dev='vda'/></disk>"
        "</devices></domain>"
    )


async def test_only_what_it_made_and_nothing_in_use(host: LibvirtHost) -> None:
    u = uuid.uuid4().hex[:8]
    copy = await host.storage.create_blank_volume(f"lo{u}-copy.qcow2", MIB)
    used = await host.storage.create_blank_volume(f"lo{u}-used.qcow2", MIB)
    other = await host.storage.create_blank_volume(f"lo{u}-other.qcow2", MIB)
    await host.storage.create_blank_volume(f"lo{u}.serial.log", 0)
    conn = host._conn.require()
    dom = conn.defineXML(_domain_xml(f"lo{u}-holder", used.path))
    try:
        removal = await remove_made(host, str(uuid.uuid4()), [copy.path, used.path], f"lo{u}")
        names = {v.name for v in await host.storage.list_volumes()}
        assert removal.removed == [copy.path]
        assert removal.kept == [f"lo{u}-used.qcow2 (used by lo{u}-holder)"]
        assert f"lo{u}-copy.qcow2" not in names
        assert {f"lo{u}-used.qcow2", f"lo{u}-other.qcow2"} <= names
        assert not await host.consoles.has_serial_log(f"lo{u}")
        sentence = removal.sentence("h2")
        assert f"were deleted ({copy.path})" in sentence
        assert f"lo{u}-used.qcow2 (used by lo{u}-holder) stay on h2" in sentence
        assert "`corral volume delete h2 VOLUME`" in sentence
    finally:
        dom.undefine()
        for name in (f"lo{u}-used.qcow2", f"lo{u}-other.qcow2"):
            await host.storage.delete_volume(name)
    assert other.path not in removal.removed


async def test_a_log_that_was_there_before_stays(host: LibvirtHost) -> None:
    u = uuid.uuid4().hex[:8]
    await host.storage.create_blank_volume(f"lo{u}.serial.log", 0)
    try:
        removal = await remove_made(host, str(uuid.uuid4()), [], None)
        assert removal.removed == [] and removal.sentence("h2") == ""
        assert await host.consoles.has_serial_log(f"lo{u}")
    finally:
        await host.consoles.delete_serial_log(f"lo{u}")
