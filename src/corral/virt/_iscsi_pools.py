"""libvirt ``iscsi-direct`` pools (blocking calls; run in worker threads).

An iscsi-direct pool logs in to one target with libiscsi (no kernel initiator) and lists its
LUNs as volumes ``unit:0:0:N``. What libvirt 9.0 does that callers must know: it also lists
LUN 0 when it is the target's controller (capacity 0, no storage), reports each LUN one block
short (it multiplies the last LBA, not the block count, by the block size), and refuses to
create or delete volumes.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import libvirt
from lxml import etree

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IscsiTarget:
    """Where an iscsi-direct pool logs in, and as whom."""

    host: str
    port: int
    target: str
    initiator: str


@dataclass(frozen=True)
class Lun:
    """One LUN of the pool's target that holds storage."""

    number: int
    capacity_bytes: int


def pool_xml(name: str, where: IscsiTarget) -> str:
    pool = etree.Element("pool", type="iscsi-direct")
    etree.SubElement(pool, "name").text = name
    source = etree.SubElement(pool, "source")
    etree.SubElement(source, "host", name=where.host, port=str(where.port))
    etree.SubElement(source, "device", path=where.target)
    initiator = etree.SubElement(source, "initiator")
    etree.SubElement(initiator, "iqn", name=where.initiator)
    return etree.tostring(pool, encoding="unicode")


def _source_of(pool: libvirt.virStoragePool) -> IscsiTarget | None:
    doc = etree.fromstring(pool.XMLDesc(0).encode())
    host = doc.find("source/host")
    device = doc.find("source/device")
    iqn = doc.find("source/initiator/iqn")
    if doc.get("type") != "iscsi-direct" or host is None or device is None or iqn is None:
        return None
    return IscsiTarget(
        host.get("name", ""), int(host.get("port", "3260")), device.get("path", ""),
        iqn.get("name", ""),
    )  # fmt: skip


def _find(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool | None:
    try:
        return conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
            return None
        raise


def undefine(conn: libvirt.virConnect, name: str) -> bool:
    """Stop and undefine pool ``name``; False when there was none."""
    pool = _find(conn, name)
    if pool is None:
        return False
    if pool.isActive():
        pool.destroy()
    with contextlib.suppress(libvirt.libvirtError):  # a transient pool is gone once stopped
        pool.undefine()
    return True


def ensure(conn: libvirt.virConnect, name: str, where: IscsiTarget) -> libvirt.virStoragePool:
    """Pool ``name`` logged in to ``where``, started and autostarted. A pool of that name
    pointing elsewhere is replaced; one that cannot start is undefined again (the login's
    error propagates): nothing stays behind on a host that does not reach the target."""
    pool = _find(conn, name)
    if pool is not None and _source_of(pool) != where:
        log.info("storage pool %s points elsewhere: redefining it", name)
        undefine(conn, name)
        pool = None
    if pool is None:
        pool = conn.storagePoolDefineXML(pool_xml(name, where), 0)
    try:
        if not pool.isActive():
            pool.create(0)
        if not pool.autostart():
            pool.setAutostart(1)
    except libvirt.libvirtError:
        with contextlib.suppress(libvirt.libvirtError):
            undefine(conn, name)
        raise
    return pool


def size(pool: libvirt.virStoragePool) -> int:
    """The target's capacity: the sum of its LUNs (as libvirt reports them)."""
    return int(pool.info()[1])


def luns(pool: libvirt.virStoragePool) -> list[Lun]:
    """The target's LUNs that hold storage, by number (refreshed now)."""
    with contextlib.suppress(libvirt.libvirtError):
        pool.refresh(0)
    found = []
    for vol in pool.listAllVolumes(0):
        number = vol.name().rpartition(":")[2]
        capacity = int(vol.info()[1])
        if number.isdigit() and capacity > 0:  # LUN 0 of tgt is its controller
            found.append(Lun(int(number), capacity))
    return sorted(found, key=lambda lun: lun.number)
