"""Domain XML rewrites for CD-ROM media (pure functions on XML text, like ``virsh change-media``).

Media change acts on the domain's first CD-ROM drive. A running domain keeps its devices: the
drive's ``<disk>`` element with a new ``<source>`` goes to ``updateDeviceFlags``. A shut-off
domain is redefined with the change, and gets a drive (the next free ``sdX``: SATA on x86, SCSI
on the other architectures) when it has none.
"""

from __future__ import annotations

from corral.errors import Conflict
from corral.model.vm import DiskBus
from corral.virt.domain_xml import Domain, cdrom_disk, free_target
from corral.virt.domain_xml.archdefaults import profile
from corral.virt.domain_xml.builder import CDROM_BUS
from corral.virt.domain_xml.disk import Controller, Disk, network_source


def _first_cdrom(domain: Domain) -> Disk | None:
    return next((d for d in domain.devices.disks if d.device == Disk.DEVICE_CDROM), None)


def _set_media(disk: Disk, path: str | None) -> None:
    """Replace the drive's source (and what libvirt derived from the old one) by ``path``."""
    for stale in ("source", "backingStore"):
        for node in disk.node.findall(stale):
            disk.node.remove(node)
    disk.type = Disk.TYPE_FILE  # an empty drive too (a network drive has no empty form)
    if path is not None:
        disk.driver_type = "raw"
        network = network_source(path)  # an ISO image of an nfs storage domain
        if network is not None:
            disk.set_network_source(network)
        else:
            disk.source_file = path
    disk.readonly = True


def cdrom_device_xml(domain_xml: str, path: str | None) -> str | None:
    """The first CD-ROM drive's ``<disk>`` holding ``path`` (None: empty), for
    ``updateDeviceFlags``; None when the domain has no CD-ROM drive."""
    disk = _first_cdrom(Domain.from_xml(domain_xml))
    if disk is None:
        return None
    _set_media(disk, path)
    return disk.to_xml()


def with_media(domain_xml: str, path: str | None) -> str:
    """The (inactive) domain with ``path`` in its first CD-ROM drive (None: ejected). A domain
    without a drive gets one for an insert; ejecting from it is a Conflict."""
    domain = Domain.from_xml(domain_xml)
    disk = _first_cdrom(domain)
    if disk is None:
        if path is None:
            raise Conflict(f"VM {domain.name!r} has no CD-ROM drive: there is nothing to eject")
        used = {d.target_dev for d in domain.devices.disks if d.target_dev}
        bus = profile(domain.os.arch).cdrom_bus if domain.os.arch else CDROM_BUS
        domain.devices.add_child(cdrom_disk(path, free_target(bus, used), bus))
        if bus is DiskBus.SCSI and not any(c.type == "scsi" for c in domain.devices.controllers):
            controller = domain.devices.add_child(Controller())
            controller.type, controller.model = "scsi", "virtio-scsi"
    else:
        _set_media(disk, path)
    return domain.to_xml()
