"""Pure parts of the cloud-init test guest: its disk's partition table, what is baked into its
tree, and its domain XML (also accepted by libvirt's test driver)."""

from __future__ import annotations

import struct
from pathlib import Path

import libvirt
import yaml
from lxml import etree

from corral.testbed import _bootdisk
from corral.testbed.cloud_guest import (
    CLOUD_CFG,
    MASKED_UNITS,
    ROOT_LABEL,
    CloudGuest,
    _configure,
    apt_sources,
    cloud_domain_xml,
)

GUEST = CloudGuest(
    Path("/g/root.qcow2"), Path("/g/vmlinuz"), Path("/g/initrd.img"), "console=ttyS0"
)


def test_cloud_guest_disk_has_a_boot_and_a_root_partition() -> None:
    total, root = 2048 * 2048, (2048 - 64 - 1) * 2048
    sector = _bootdisk.mbr(b"\xfa" * 440, total, root_sectors=root)
    boot_entry, root_entry = sector[446:462], sector[462:478]
    assert boot_entry[0] == 0x80 and boot_entry[4] == _bootdisk.FAT16_LBA
    assert root_entry[0] == 0 and root_entry[4] == _bootdisk.LINUX
    boot_start, boot_size = struct.unpack("<II", boot_entry[8:16])
    assert (boot_start, boot_size) == (2048, 64 * 2048)
    assert struct.unpack("<II", root_entry[8:16]) == (boot_start + boot_size, root)
    assert sector[478:510] == bytes(32) and sector[510:] == b"\x55\xaa"


def test_cloud_guest_tree_is_configured_for_nocloud_without_host_keys(tmp_path: Path) -> None:
    for directory in ("etc/cloud/cloud.cfg.d", "etc/ssh", "etc/systemd/system"):
        (tmp_path / directory).mkdir(parents=True)
    (tmp_path / "etc/ssh/ssh_host_ed25519_key").write_text("secret")
    (tmp_path / "etc/machine-id").write_text("0123456789abcdef\n")
    _configure(tmp_path)
    assert yaml.safe_load(CLOUD_CFG)["datasource_list"] == ["NoCloud", "None"]
    assert (tmp_path / "etc/cloud/cloud.cfg.d/90_corral.cfg").read_text() == CLOUD_CFG
    assert f"LABEL={ROOT_LABEL} / ext4" in (tmp_path / "etc/fstab").read_text()
    assert list((tmp_path / "etc/ssh").iterdir()) == []
    assert (tmp_path / "etc/machine-id").read_text() == ""
    for unit in MASKED_UNITS:
        assert (tmp_path / "etc/systemd/system" / unit).readlink() == Path("/dev/null")


def test_cloud_guest_builds_from_the_machines_debian_sources() -> None:
    assert apt_sources(), "this machine's apt sources name a Debian mirror"


def test_cloud_guest_domain_puts_the_seed_on_virtio_scsi() -> None:
    xml = cloud_domain_xml(
        "c1", GUEST, Path("/d/c1.qcow2"), Path("/d/seed.iso"), mac="52:54:00:c1:00:01"
    )
    root = etree.fromstring(xml)
    cdrom = root.find("devices/disk[@device='cdrom']")
    assert cdrom is not None
    assert cdrom.find("target").get("bus") == "scsi"  # the cloud kernel has no AHCI for SATA
    assert root.find("devices/controller[@type='scsi']").get("model") == "virtio-scsi"
    assert root.find("os/boot").get("dev") == "hd" and root.find("os/kernel") is None
    kernel = etree.fromstring(
        cloud_domain_xml(
            "c1",
            GUEST,
            Path("/d/c1.qcow2"),
            Path("/d/s.iso"),
            mac="52:54:00:c1:00:01",
            kernel_boot=True,
        )
    )
    assert kernel.findtext("os/kernel") == "/g/vmlinuz" and kernel.find("os/boot") is None
    conn = libvirt.open("test:///default")
    try:
        dom = conn.defineXML(xml)
        assert dom.name() == "c1"
        dom.undefine()
    finally:
        conn.close()
