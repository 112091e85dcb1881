"""libvirt's backup API in push mode (formatbackup.html, formatcheckpoint.html): QEMU writes
each disk's backup into a qcow2 file beside the disk's volume (the whole disk, or with
``incremental`` only what changed since that checkpoint) and, in the same call, a new
checkpoint starts tracking changes for the next one (persistent dirty bitmaps in the qcow2
disks: they survive shutdown, and a VM shut off is started paused for its backup, so the
guest never runs)."""

from __future__ import annotations

from dataclasses import dataclass

import libvirt
from lxml import etree

from corral.errors import CorralError
from corral.virt._transfer import recv_all


@dataclass(frozen=True)
class BackupJob:
    done: bool
    failed: str | None
    processed: int
    total: int


def backup_xml(targets: dict[str, str], skip: list[str], incremental: str | None) -> str:
    root = etree.Element("domainbackup", mode="push")
    if incremental is not None:
        etree.SubElement(root, "incremental").text = incremental
    disks = etree.SubElement(root, "disks")
    for name, path in targets.items():
        disk = etree.SubElement(disks, "disk", name=name, backup="yes", type="file")
        etree.SubElement(disk, "target", file=path)
        etree.SubElement(disk, "driver", type="qcow2")
    for name in skip:
        etree.SubElement(disks, "disk", name=name, backup="no")
    return etree.tostring(root, encoding="unicode")


def checkpoint_xml(name: str, targets: list[str], skip: list[str]) -> str:
    root = etree.Element("domaincheckpoint")
    etree.SubElement(root, "name").text = name
    disks = etree.SubElement(root, "disks")
    for target in targets:
        etree.SubElement(disks, "disk", name=target, checkpoint="bitmap")
    for target in skip:
        etree.SubElement(disks, "disk", name=target, checkpoint="no")
    return etree.tostring(root, encoding="unicode")


def begin(dom: libvirt.virDomain, backup: str, checkpoint: str | None) -> None:
    dom.backupBegin(backup, checkpoint, 0)


def job(dom: libvirt.virDomain) -> BackupJob:
    """The backup job's state; done (and why it failed) once no job runs."""
    if dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE:
        stats = dom.jobStats()
        return BackupJob(False, None, int(stats.get("disk_processed", 0)),
                         int(stats.get("disk_total", 0)))  # fmt: skip
    stats = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    if stats.get("operation") not in (None, libvirt.VIR_DOMAIN_JOB_OPERATION_BACKUP):
        raise CorralError("the domain's last job was not a backup")
    if stats.get("type") == libvirt.VIR_DOMAIN_JOB_COMPLETED:
        total = int(stats.get("disk_total", 0))
        return BackupJob(True, None, total, total)
    return BackupJob(True, str(stats.get("errmsg") or "the backup job failed"), 0, 0)


def abort(dom: libvirt.virDomain) -> None:
    if dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE:
        dom.abortJob()


def checkpoints(dom: libvirt.virDomain) -> list[str]:
    return [c.getName() for c in dom.listAllCheckpoints(0)]


def delete_checkpoint(dom: libvirt.virDomain, name: str) -> None:
    try:
        dom.checkpointLookupByName(name, 0).delete(0)
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN_CHECKPOINT:
            raise


def read_file(conn: libvirt.virConnect, path: str, offset: int, length: int) -> bytes:
    """``length`` bytes at ``offset`` of a volume file, through a libvirt stream."""
    vol = conn.storageVolLookupByPath(path)
    stream = conn.newStream(0)
    vol.download(stream, offset, length, 0)
    return recv_all(stream)


def write_file(conn: libvirt.virConnect, path: str, offset: int, data: bytes) -> None:
    """``data`` into a volume file at ``offset``, through a libvirt stream."""
    vol = conn.storageVolLookupByPath(path)
    stream = conn.newStream(0)
    vol.upload(stream, offset, len(data), 0)
    sent = 0
    while sent < len(data):
        sent += stream.send(data[sent : sent + 1024 * 1024])
    stream.finish()
