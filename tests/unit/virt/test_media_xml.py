"""CD-ROM media rewrites of domain XML (pure), and libvirt's test driver accepting them."""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest

from corral.errors import Conflict
from corral.virt._media import cdrom_device_xml, with_media
from corral.virt.domain_xml import Domain, cdrom_disk

DATA = Path(__file__).parent / "data"
ISO = "/var/lib/libvirt/corral/images/_iso.new.iso"

LIVE_DISK = """\
<domain type="qemu" id="3"><name>live</name><memory>65536</memory><os><type>hvm</type></os>
<devices>
  <disk type="file" device="disk"><source file="/p/live-root.qcow2" index="2"/>
    <target dev="vda" bus="virtio"/></disk>
  <disk type="file" device="cdrom">
    <driver name="qemu" type="raw"/>
    <source file="/p/old.iso" index="1"/>
    <backingStore/>
    <target dev="sda" bus="sata"/>
    <readonly/>
    <alias name="sata0-0-0"/>
    <address type="drive" controller="0" bus="0" target="0" unit="0"/>
  </disk>
</devices></domain>
"""


def _cdroms(xml: str) -> list[tuple[str | None, str | None, str | None, bool]]:
    return [
        (d.target_dev, d.target_bus, d.source_file, d.readonly)
        for d in Domain.from_xml(xml).devices.disks
        if d.device == "cdrom"
    ]


def test_insert_and_eject_in_an_existing_drive() -> None:
    xml = (DATA / "cdrom_q35.xml").read_text()
    assert _cdroms(xml) == [("sdc", "sata", "/srv/iso/debian.iso", True)]
    inserted = with_media(xml, ISO)
    assert _cdroms(inserted) == [("sdc", "sata", ISO, True)]
    ejected = with_media(inserted, None)
    assert _cdroms(ejected) == [("sdc", "sata", None, True)]
    assert "<source" not in ejected.split('device="cdrom"')[1].split("</disk>")[0]
    # Nothing else changes. (Media change inserts the library's images, which libvirt may
    # relabel: the host file's "relabel=no" went with it.)
    unlabelled = xml.replace(
        '"/srv/iso/debian.iso">\n        <seclabel model="dac" relabel="no"/>\n      </source>',
        '"/srv/iso/debian.iso"/>',
    )
    assert with_media(ejected, "/srv/iso/debian.iso") == unlabelled


def test_insert_adds_a_sata_drive_after_the_used_letters() -> None:
    xml = (DATA / "disk_kvm_nat.xml").read_text()  # vda (virtio) and hda (IDE), no CD-ROM
    assert _cdroms(with_media(xml, ISO)) == [("sda", "sata", ISO, True)]
    taken = (DATA / "cdrom_q35.xml").read_text().replace('device="cdrom"', 'device="floppy"')
    assert _cdroms(with_media(taken, ISO)) == [("sdd", "sata", ISO, True)]  # sda-sdc are used


def test_eject_without_a_drive_is_a_conflict() -> None:
    with pytest.raises(Conflict, match="no CD-ROM drive"):
        with_media((DATA / "kernel_tcg.xml").read_text(), None)


def test_the_live_device_gets_the_new_source_only() -> None:
    device = cdrom_device_xml(LIVE_DISK, ISO)
    assert device is not None
    disk = Domain.from_xml(f"<domain><devices>{device}</devices></domain>").devices.disks[0]
    assert (disk.device, disk.target_dev, disk.source_file, disk.readonly) == (
        "cdrom", "sda", ISO, True,
    )  # fmt: skip
    assert "index=" not in device and "backingStore" not in device
    assert "<alias" in device  # libvirt matches the device; the rest may stay
    empty = cdrom_device_xml(LIVE_DISK, None)
    assert empty is not None and "<source" not in empty
    assert cdrom_device_xml((DATA / "kernel_tcg.xml").read_text(), ISO) is None


@pytest.mark.parametrize("golden", ["kernel_tcg", "cdrom_q35", "empty_cdrom_drive"])
def test_libvirt_accepts_the_rewritten_domain(golden: str, unique: str) -> None:
    domain = Domain.from_xml(with_media((DATA / f"{golden}.xml").read_text(), ISO))
    domain.name = f"media-{golden}-{unique}"
    conn = libvirt.open("test:///default")
    try:
        dom = conn.defineXML(domain.to_xml())
        try:
            assert _cdroms(dom.XMLDesc(0))[0][2] == ISO
        finally:
            dom.undefine()
    finally:
        conn.close()


NFS_ISO = "nfs://198.18.0.200/export/_iso.boot.iso"


def test_an_nfs_iso_is_a_network_cdrom_and_an_eject_empties_it() -> None:
    """An ISO image of an nfs storage domain: QEMU's NFS client reads it (no port: libvirt
    refuses one on nfs hosts); ejecting leaves an empty file drive, which libvirt takes."""
    for xml in (with_media(LIVE_DISK, NFS_ISO), cdrom_device_xml(LIVE_DISK, NFS_ISO)):
        assert xml is not None
        [disk] = [
            d for d in Domain.from_xml(xml if "<domain" in xml else
                                       f"<domain><devices>{xml}</devices></domain>").devices.disks
            if d.device == "cdrom"
        ]  # fmt: skip
        assert (disk.type, disk.source_protocol, disk.source_name, disk.source_host_name) == (
            "network", "nfs", "/export/_iso.boot.iso", "198.18.0.200",
        )  # fmt: skip
        assert disk.source_file is None and disk.source_host_port is None and disk.readonly
        assert disk.path == NFS_ISO
    ejected = with_media(with_media(LIVE_DISK, NFS_ISO), None)
    [drive] = [d for d in Domain.from_xml(ejected).devices.disks if d.device == "cdrom"]
    assert drive.type == "file" and "<source" not in drive.to_xml()


def test_a_new_vm_booting_an_nfs_iso_gets_a_network_cdrom() -> None:
    disk = cdrom_disk(NFS_ISO, "sda", relabel=False)
    assert (disk.type, disk.device, disk.source_protocol, disk.source_name) == (
        "network", "cdrom", "nfs", "/export/_iso.boot.iso",
    )  # fmt: skip
    assert "seclabel" not in disk.to_xml()  # a network source has no file to label
