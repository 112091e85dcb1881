"""Pure parts of the testbed: module ordering, the MBR, path mapping, the guest's domain XML."""

from __future__ import annotations

import struct
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from corral.errors import HostError
from corral.testbed import _bootdisk, _debian
from corral.testbed._guest_init import CANARY, CANARY_FILE, init_script
from corral.testbed.guest_domains import guest_domain_xml, serial_log_path
from corral.testbed.guest_images import DiskGuest, KernelGuest
from corral.testbed.private_libvirtd import PrivateLibvirtd


def fake_module(tree: Path, name: str, depends: str) -> None:
    path = tree / "lib/modules/6.1.0-x/kernel/drivers" / f"{name}.ko"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF junk\0license=GPL\0depends=" + depends.encode() + b"\0name=x\0")


def test_modules_come_after_their_dependencies(tmp_path: Path) -> None:
    fake_module(tmp_path, "virtio", "")
    fake_module(tmp_path, "virtio_ring", "")
    fake_module(tmp_path, "virtio_blk", "virtio,virtio_ring")
    fake_module(tmp_path, "virtio-rng", "virtio_ring,virtio")
    fake_module(tmp_path, "unused", "")
    index = _debian.module_index(tmp_path)
    order = _debian.module_load_order(index, ["virtio_blk", "virtio_rng"])
    assert order == ["virtio", "virtio_ring", "virtio_blk", "virtio_rng"]


def test_a_missing_module_is_reported_by_name(tmp_path: Path) -> None:
    fake_module(tmp_path, "virtio_net", "virtio,net_failover")
    fake_module(tmp_path, "virtio", "")
    with pytest.raises(HostError, match="net_failover"):
        _debian.module_load_order(_debian.module_index(tmp_path), ["virtio_net"])


def test_mbr_has_one_active_partition_at_1_mib() -> None:
    total = 48 * 2048
    sector = _bootdisk.mbr(b"\xfa" * 440, total)
    assert len(sector) == 512 and sector[510:] == b"\x55\xaa"
    entry = sector[446:462]
    assert entry[0] == 0x80 and entry[4] == _bootdisk.FAT16_LBA
    assert struct.unpack("<II", entry[8:16]) == (2048, total - 2048)
    assert sector[462:510] == bytes(48)  # the other three entries are empty


def test_mbr_refuses_oversized_boot_code() -> None:
    with pytest.raises(ValueError, match="440"):
        _bootdisk.mbr(bytes(446), 4096)


def test_host_path_maps_libvirt_directories_into_the_base(tmp_path: Path) -> None:
    daemon = PrivateLibvirtd(tmp_path)
    assert daemon.host_path("/var/lib/libvirt/qemu/domain-1-a/vnc.sock") == (
        tmp_path / "lib/qemu/domain-1-a/vnc.sock"
    )
    assert daemon.host_path("/var/log/libvirt/qemu/a.log") == tmp_path / "log/qemu/a.log"
    assert daemon.host_path("/var/run/libvirt/qemu/a.pid") == tmp_path / "run/qemu/a.pid"
    assert daemon.host_path("/var/lib/libvirtx/a") == Path("/var/lib/libvirtx/a")
    assert daemon.uri == f"qemu+unix:///system?socket={tmp_path}/run/libvirt-sock"
    shared = PrivateLibvirtd(tmp_path, shared_cache=tmp_path / "shared")
    assert shared.host_path("/var/cache/libvirt/qemu/x.xml") == tmp_path / "shared/qemu/x.xml"


def test_init_script_has_every_placeholder_filled() -> None:
    script = init_script()
    assert b"@" not in script
    assert CANARY in script and CANARY_FILE.encode() in script


KERNEL = KernelGuest(Path("/g/vmlinuz"), Path("/g/initrd.gz"), "console=tty0 console=ttyS0")


def test_kernel_guest_domain_xml() -> None:
    root = etree.fromstring(guest_domain_xml("g1", KERNEL, extra_cmdline="corral.scroll=1"))
    assert root.get("type") == "qemu"
    assert root.findtext("os/kernel") == "/g/vmlinuz"
    assert root.findtext("os/cmdline") == "console=tty0 console=ttyS0 corral.scroll=1"
    assert root.find("features/acpi") is not None and root.find("features/apic") is not None
    assert root.xpath("string(devices/serial/log/@file)") == serial_log_path("g1")
    assert root.find("devices/disk") is None


def test_disk_guest_domain_xml_boots_the_given_overlay() -> None:
    xml = guest_domain_xml("g2", DiskGuest(Path("/g/disk.qcow2")), disk=Path("/t/g2.qcow2"))
    root = etree.fromstring(xml)
    assert root.find("os/kernel") is None and root.xpath("string(os/boot/@dev)") == "hd"
    assert root.xpath("string(devices/disk/source/@file)") == "/t/g2.qcow2"
    assert root.xpath("string(devices/disk/driver/@type)") == "qcow2"


@pytest.mark.parametrize("guest", [KERNEL, DiskGuest(Path("/g/disk.qcow2"))])
def test_libvirt_accepts_the_domain_xml(guest: KernelGuest | DiskGuest) -> None:
    conn = libvirt.open("test:///default")
    try:
        dom = conn.defineXML(guest_domain_xml("accepted", guest))
        assert dom.name() == "accepted"
        assert "<acpi/>" in dom.XMLDesc(0)
    finally:
        conn.close()
