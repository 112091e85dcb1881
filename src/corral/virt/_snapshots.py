"""Internal qcow2 snapshots (blocking calls; run in worker threads)."""

from __future__ import annotations

from datetime import UTC, datetime

import libvirt
from lxml import etree

from corral.model.vm import SnapshotInfo
from corral.virt._xmlgen import snapshot_xml


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


def create(dom: libvirt.virDomain, name: str, description: str) -> SnapshotInfo:
    # No flags: libvirt then takes an internal snapshot of every qcow2 disk, with the memory
    # state when the domain runs.
    return snapshot_info(dom.snapshotCreateXML(snapshot_xml(name, description), 0))


def revert(dom: libvirt.virDomain, name: str) -> None:
    dom.revertToSnapshot(dom.snapshotLookupByName(name, 0), 0)


def delete(dom: libvirt.virDomain, name: str) -> None:
    dom.snapshotLookupByName(name, 0).delete(0)
