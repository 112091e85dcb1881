"""Moving one disk of a domain to another volume: libvirt block copy for a running domain, a
volume clone for a shut-off one, and the XML both need (blocking calls: worker threads).

Block copy (``virDomainBlockCopy``) mirrors the disk into a destination the caller made
beforehand (``REUSE_EXT``: the new volume of the target storage domain, the source's virtual
size, qcow2); writes of the guest go to both until :func:`pivot` switches the guest over.
``TRANSIENT_JOB``: libvirt 9.0 refuses a recoverable copy job on a persistent domain ("domain
is not transient"). At the pivot libvirt 9.0 also rewrites the persistent definition's disk
source; callers rewrite it once more (:func:`with_disk_source`) so that the next start uses
the new volume whatever libvirt did.
"""

from __future__ import annotations

from dataclasses import dataclass

import libvirt
from lxml import etree

from corral.model.storage_domain import DiskSource
from corral.virt._xmlgen import volume_xml

COPY_FLAGS = libvirt.VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | libvirt.VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB


@dataclass(frozen=True)
class CopyProgress:
    """A running copy job: bytes mirrored so far of ``total``; ``ready`` once source and
    destination are in sync (the guest's writes then go to both; pivot now)."""

    done: int
    total: int
    ready: bool


def _parse(xml: str) -> etree._Element:
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    return etree.fromstring(xml.encode(), parser)


def _fill_source(disk: etree._Element, source: DiskSource) -> None:
    """``disk``'s ``type``, ``<driver type>`` and ``<source>`` for ``source``."""
    for stale in disk.findall("source") + disk.findall("backingStore"):
        disk.remove(stale)
    node = etree.Element("source")
    if source.file is not None:
        disk.set("type", "file")
        node.set("file", source.file)
    else:
        disk.set("type", "network")
        node.set("protocol", source.protocol or "")
        node.set("name", source.name or "")
        for host in source.hosts:
            entry = etree.SubElement(node, "host", name=host.name)
            if host.port is not None:
                entry.set("port", str(host.port))
        if source.initiator_iqn:
            initiator = etree.SubElement(node, "initiator")
            etree.SubElement(initiator, "iqn", name=source.initiator_iqn)
    driver = disk.find("driver")
    if driver is None:
        driver = etree.Element("driver", name="qemu")
        disk.insert(0, driver)
    driver.set("type", source.format)
    # <source> goes right after <driver>, where libvirt itself puts it.
    driver.addnext(node)


def copy_destination_xml(source: DiskSource) -> str:
    """The ``<disk>`` document ``virDomainBlockCopy`` takes as the destination."""
    disk = etree.Element("disk", device="disk")
    _fill_source(disk, source)
    return etree.tostring(disk, encoding="unicode")


def with_disk_source(xml: str, target: str, source: DiskSource) -> str:
    """Domain ``xml`` with disk ``target``'s source replaced by ``source``."""
    root = _parse(xml)
    for disk in root.iterfind("./devices/disk"):
        node = disk.find("target")
        if node is not None and node.get("dev") == target:
            _fill_source(disk, source)
            return etree.tostring(root, encoding="unicode")
    raise ValueError(f"no disk with target {target}")


def start_copy(
    dom: libvirt.virDomain, target: str, source: DiskSource, bandwidth: int | None = None
) -> None:
    """Start mirroring ``target`` into ``source``; ``bandwidth`` caps it in bytes/s."""
    params = {libvirt.VIR_DOMAIN_BLOCK_COPY_BANDWIDTH: bandwidth} if bandwidth else None
    dom.blockCopy(target, copy_destination_xml(source), params, COPY_FLAGS)


def _mirror_ready(dom: libvirt.virDomain, target: str) -> bool:
    root = _parse(dom.XMLDesc(0))
    for disk in root.iterfind("./devices/disk"):
        node = disk.find("target")
        if node is not None and node.get("dev") == target:
            mirror = disk.find("mirror")
            return mirror is not None and mirror.get("ready") == "yes"
    return False


def copy_progress(dom: libvirt.virDomain, target: str) -> CopyProgress | None:
    """The copy job on ``target`` (None: there is none, it ended or failed). Ready is read
    from the live definition's ``<mirror ready='yes'>``: libvirt sets it on QEMU's
    BLOCK_JOB_READY event, while ``cur == end`` alone can be true before that."""
    info = dom.blockJobInfo(target, 0)
    if not info:
        return None
    done, total = int(info.get("cur", 0)), int(info.get("end", 0))
    return CopyProgress(done, total, _mirror_ready(dom, target))


def pivot(dom: libvirt.virDomain, target: str) -> None:
    """Switch the guest to the destination (waits until QEMU did)."""
    dom.blockJobAbort(target, libvirt.VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT)


def abort(dom: libvirt.virDomain, target: str) -> None:
    """Stop the copy; the guest stays on its source. No job: nothing to do."""
    if dom.blockJobInfo(target, 0):
        dom.blockJobAbort(target, 0)


@dataclass(frozen=True)
class DiskFacts:
    """A domain's disk as a move needs it: virtual size, bytes allocated, image format."""

    capacity: int
    allocation: int
    format: str


def disk_facts(dom: libvirt.virDomain, target: str) -> DiskFacts:
    """Disk ``target`` of a running or shut-off domain (format from its ``<driver type>``)."""
    capacity, allocation, _physical = dom.blockInfo(target, 0)
    fmt = "raw"
    for disk in _parse(dom.XMLDesc(0)).iterfind("./devices/disk"):
        node = disk.find("target")
        if node is not None and node.get("dev") == target:
            driver = disk.find("driver")
            fmt = (driver.get("type") if driver is not None else None) or "raw"
    return DiskFacts(int(capacity), int(allocation), str(fmt))


def clone_into(conn: libvirt.virConnect, source_path: str, dest_path: str) -> None:
    """Make the volume at ``dest_path`` (a blank volume just made for this) a copy of the one at
    ``source_path``: libvirt clones across pools of the host (``qemu-img convert`` on the
    host for directory pools), so the data never passes through Corral."""
    source = conn.storageVolLookupByPath(source_path)
    blank = conn.storageVolLookupByPath(dest_path)
    pool = blank.storagePoolLookupByVolume()
    name = blank.name()
    capacity = int(blank.info()[1])
    blank.delete(0)
    pool.createXMLFrom(volume_xml(name, capacity, "qcow2"), source, 0)
