"""Internal qcow2 snapshots (blocking calls; run in worker threads)."""

from __future__ import annotations

from datetime import UTC, datetime

import libvirt
from lxml import etree

from corral.errors import Conflict
from corral.model.vm import SnapshotInfo
from corral.virt._xmlgen import snapshot_xml
from corral.virt.domain_xml import Domain
from corral.virt.domain_xml.disk import Disk


def snapshot_info(snap: libvirt.virDomainSnapshot) -> SnapshotInfo:
    doc = etree.fromstring(snap.getXMLDesc(0).encode())
    created = int(doc.findtext("creationTime") or "0")
    return SnapshotInfo(
        name=snap.getName(),
        description=doc.findtext("description") or "",
        created_at=datetime.fromtimestamp(created, tz=UTC),
        vm_state=doc.findtext("state") or "",
        current=bool(snap.isCurrent(0)),
    )


def list_snapshots(dom: libvirt.virDomain) -> list[SnapshotInfo]:
    infos = [snapshot_info(s) for s in dom.listAllSnapshots(0)]
    return sorted(infos, key=lambda s: (s.created_at, s.name))


def check_snapshottable(dom: libvirt.virDomain) -> None:
    """Internal snapshots live inside qcow2 images: refuse, in words, a VM that has none or
    has another kind of writable disk (libvirt would answer "nothing selected for snapshot" or
    "internal and full system snapshots require all disks to be selected")."""
    domain = Domain.from_xml(dom.XMLDesc(0))
    disks = [d for d in domain.devices.disks if d.device != Disk.DEVICE_CDROM and not d.readonly]
    if not disks:
        raise Conflict(
            f"VM {dom.name()!r} has no disk: snapshots are stored inside qcow2 disk images, so "
            "a VM needs a qcow2 disk (e.g. `--disk size=1G`) to have snapshots"
        )
    other = [d for d in disks if d.driver_type != "qcow2"]
    if other:
        listed = ", ".join(f"{d.target_dev} ({d.driver_type or 'unknown'} format)" for d in other)
        raise Conflict(
            f"VM {dom.name()!r} cannot have snapshots: they are stored inside qcow2 disk "
            f"images and these disks are not qcow2: {listed}; convert them to qcow2 or remove "
            "them"
        )


def create(dom: libvirt.virDomain, name: str, description: str) -> SnapshotInfo:
    check_snapshottable(dom)
    # No flags: libvirt then takes an internal snapshot of every qcow2 disk, with the memory
    # state when the domain runs.
    return snapshot_info(dom.snapshotCreateXML(snapshot_xml(name, description), 0))


def revert(dom: libvirt.virDomain, name: str) -> None:
    dom.revertToSnapshot(dom.snapshotLookupByName(name, 0), 0)


def delete(dom: libvirt.virDomain, name: str) -> None:
    dom.snapshotLookupByName(name, 0).delete(0)
