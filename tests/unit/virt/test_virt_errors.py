"""``map_libvirt_errors``: real libvirt errors become the matching Corral errors."""

from __future__ import annotations

from collections.abc import Callable

import libvirt
import pytest
from lxml import etree

from corral.errors import Conflict, HostError, HostUnreachable, InvalidRequest, NotFound
from corral.virt import map_libvirt_errors
from corral.virt._eventloop import _ignore_libvirt_error

TEST_URI = "test:///default"
libvirt.registerErrorHandler(_ignore_libvirt_error, None)


@pytest.fixture
def conn() -> libvirt.virConnect:
    return libvirt.open(TEST_URI)


def test_missing_domain_is_not_found(conn: libvirt.virConnect) -> None:
    with pytest.raises(NotFound) as caught, map_libvirt_errors("look up VM ghost"):
        conn.lookupByName("ghost-domain-that-does-not-exist")
    assert caught.value.message.startswith("look up VM ghost: ")
    assert "not found" in caught.value.message.lower()
    assert isinstance(caught.value.__cause__, libvirt.libvirtError)


def test_missing_volume_network_snapshot_are_not_found(conn: libvirt.virConnect) -> None:
    pool = conn.storagePoolLookupByName("default-pool")
    dom = conn.lookupByName("test")
    actions: list[Callable[[], object]] = [
        lambda: pool.storageVolLookupByName("nope.qcow2"),
        lambda: conn.networkLookupByName("nope-net"),
        lambda: dom.snapshotLookupByName("nope-snap", 0),
    ]
    for action in actions:
        with pytest.raises(NotFound), map_libvirt_errors("look up"):
            action()


def test_wrong_state_is_conflict(conn: libvirt.virConnect) -> None:
    with pytest.raises(Conflict) as caught, map_libvirt_errors("start network default"):
        conn.networkLookupByName("default").create()  # already running
    assert "already running" in caught.value.message


def test_name_taken_by_another_uuid_is_conflict(conn: libvirt.virConnect) -> None:
    doc = etree.fromstring(conn.lookupByName("test").XMLDesc(0).encode())
    uuid = doc.find("uuid")
    assert uuid is not None
    uuid.text = "00000000-0000-4000-8000-000000000001"
    other = etree.tostring(doc, encoding="unicode")
    with pytest.raises(Conflict), map_libvirt_errors("define VM test"):
        conn.defineXML(other)


def test_bad_xml_is_invalid_request(conn: libvirt.virConnect) -> None:
    with pytest.raises(InvalidRequest), map_libvirt_errors("define"):
        conn.defineXML("<domain type='test'><name>x</name>")


def test_closed_connection_is_host_unreachable(conn: libvirt.virConnect) -> None:
    conn.close()
    with pytest.raises(HostUnreachable) as caught, map_libvirt_errors("list domains"):
        conn.listAllDomains(0)
    assert "reconnects" in caught.value.message


def test_unreachable_socket_is_host_unreachable(tmp_path: object) -> None:
    with pytest.raises(HostUnreachable), map_libvirt_errors("connect"):
        libvirt.open("qemu+unix:///system?socket=/nonexistent/corral/libvirt-sock")


def test_other_errors_are_host_errors(conn: libvirt.virConnect) -> None:
    dom = conn.lookupByName("test")
    # The test driver cannot resize volumes: a plain host failure, neither 404 nor 409.
    pool = conn.storagePoolLookupByName("default-pool")
    vol = pool.createXML("<volume><name>resize-err.img</name><capacity>1024</capacity></volume>", 0)
    try:
        with pytest.raises(HostError) as caught, map_libvirt_errors("resize"):
            vol.resize(4096, 0)
        assert type(caught.value) is HostError
    finally:
        vol.delete(0)
    assert dom.name() == "test"
