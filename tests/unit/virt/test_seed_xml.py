"""The definition of a VM made from a template with a cloud-init seed: the MACs the seed's
network config names, and the seed as a read-only CD-ROM on virtio-scsi (cloud kernels often
lack a SATA driver), defined by libvirt's test driver."""

from __future__ import annotations

import re

import libvirt
import pytest
from lxml import etree

from corral.virt._clone import interface_count, random_mac, with_seed

DOMAIN = """<domain type='test'><name>t</name><memory unit='MiB'>64</memory>
<os><type>hvm</type></os><devices>
<disk type='file' device='disk'><source file='/tmp/a.qcow2'/><target dev='vda' bus='virtio'/></disk>
{extra}
<interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/></interface>
<interface type='user'/>
</devices></domain>"""


def test_macs_and_a_scsi_seed_are_set_and_libvirt_accepts_them() -> None:
    xml = DOMAIN.format(extra="")
    macs = [random_mac(), random_mac()]
    assert interface_count(xml) == 2
    assert all(re.fullmatch(r"52:54:00(:[0-9a-f]{2}){3}", m) for m in macs)
    root = etree.fromstring(with_seed(xml, macs, "/pool/t-cidata.iso"))
    assert [i.find("mac").get("address") for i in root.iter("interface")] == macs
    [controller] = root.findall("./devices/controller[@type='scsi']")
    assert controller.get("model") == "virtio-scsi"
    [cdrom] = root.findall("./devices/disk[@device='cdrom']")
    assert cdrom.find("source").get("file") == "/pool/t-cidata.iso"
    assert cdrom.find("target").attrib == {"dev": "sda", "bus": "scsi"}
    assert cdrom.find("readonly") is not None
    conn = libvirt.open("test:///default")
    try:
        dom = conn.defineXML(etree.tostring(root, encoding="unicode"))
        dom.undefine()
    finally:
        conn.close()


def test_an_existing_scsi_controller_and_disk_names_are_kept() -> None:
    extra = (
        "<controller type='scsi' index='0' model='virtio-scsi'/>"
        "<disk type='file' device='disk'><source file='/tmp/b'/>"
        "<target dev='sda' bus='scsi'/></disk>"
    )
    root = etree.fromstring(with_seed(DOMAIN.format(extra=extra), [random_mac()] * 2, "/s.iso"))
    assert len(root.findall("./devices/controller[@type='scsi']")) == 1
    [cdrom] = root.findall("./devices/disk[@device='cdrom']")
    assert cdrom.find("target").get("dev") == "sdb"


def test_a_mac_per_nic_or_nothing() -> None:
    with pytest.raises(ValueError, match="1 MACs for 2 NICs"):
        with_seed(DOMAIN.format(extra=""), [random_mac()], "/s.iso")
