"""The test bed's storage server (nfs-ganesha and tgt in a namespace of their own) serves the
test-bed hosts through QEMU's and libvirt's userspace clients: qemu-img over nfs:// and
iscsi:// URLs, TCG guests booting from and writing to network disks, an iscsi-direct pool."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from corral.testbed.guest_domains import SerialLog, guest_domain_xml, serial_log_path, wait_until
from corral.testbed.guest_images import BOOT_MARKER, DiskGuest
from corral.testbed.multihost import MultiHostTestbed, TestbedHost, allocate_slot
from corral.testbed.storage_server import StorageServer

pytestmark = pytest.mark.integration

BOOT_TIMEOUT = 90  # TCG on two shared cores; a few seconds when the machine is idle
MARK = b"CORRAL-STORAGE-WRITE"


def _inside(host: TestbedHost, *argv: str) -> str:
    done = subprocess.run(host.inside(list(argv)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{argv} on {host.name}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def h1(testbed: MultiHostTestbed) -> TestbedHost:
    return testbed.host("h1")


@pytest.fixture(scope="module")
def h1_conn(h1: TestbedHost) -> Iterator[libvirt.virConnect]:
    conn = libvirt.open(h1.unix_uri)
    yield conn
    conn.close()


def test_nfs_qemu_img_creates_and_reads_an_image_from_a_testbed_host(
    h1: TestbedHost, storage_server: StorageServer
) -> None:
    url = storage_server.nfs_url("made-by-h1.qcow2")
    _inside(h1, "qemu-img", "create", "-q", "-f", "qcow2", url, "32M")
    info = _inside(h1, "qemu-img", "info", "--output=json", url)
    assert '"virtual-size": 33554432' in info and '"format": "qcow2"' in info
    made = storage_server.export_dir / "made-by-h1.qcow2"
    assert made.stat().st_uid == 0  # no root squash: QEMU as root owns what it creates
    assert made.read_bytes()[:4] == b"QFI\xfb"


def test_iscsi_qemu_img_sees_every_lun_from_a_testbed_host(
    h1: TestbedHost, storage_server: StorageServer
) -> None:
    for lun, size_mib in enumerate(storage_server.lun_sizes_mib, start=1):
        info = _inside(h1, "qemu-img", "info", "--output=json", storage_server.iscsi_url(lun))
        assert f'"virtual-size": {size_mib * 2**20}' in info


def test_iscsi_direct_pool_on_a_testbed_host_lists_the_luns(
    h1_conn: libvirt.virConnect, storage_server: StorageServer
) -> None:
    pool_xml = f"""<pool type='iscsi-direct'>
      <name>tb-iscsi</name>
      <source>
        <host name='{storage_server.address}' port='3260'/>
        <device path='{storage_server.iqn}'/>
        <initiator><iqn name='iqn.2026-12.test.corral:h1'/></initiator>
      </source>
    </pool>"""
    pool = h1_conn.storagePoolCreateXML(pool_xml, 0)
    try:
        volumes = {v.name(): (v.path(), v.info()[1]) for v in pool.listAllVolumes(0)}
    finally:
        pool.destroy()
    prefix = f"ip-{storage_server.portal}-iscsi-{storage_server.iqn}-lun-"
    # LUN 0 is tgt's controller (no storage); libvirt 9.0 reports each disk one 512-byte block
    # short (it multiplies the last LBA, not the block count, by the block size).
    expected = {"unit:0:0:0": (f"{prefix}0", 0)} | {
        f"unit:0:0:{n}": (f"{prefix}{n}", size * 2**20 - 512)
        for n, size in enumerate(storage_server.lun_sizes_mib, start=1)
    }
    assert volumes == expected


# -- TCG guests on network disks -----------------------------------------------------------------
def _network_disk(
    devices: etree._Element,
    protocol: str,
    name: str,
    address: str,
    port: int | None,
    dev: str,
    fmt: str,
) -> None:
    disk = etree.SubElement(devices, "disk", type="network", device="disk")
    etree.SubElement(disk, "driver", name="qemu", type=fmt)
    source = etree.SubElement(disk, "source", protocol=protocol, name=name)
    # libvirt refuses a port for nfs ("port cannot be specified in 'nfs' protocol host").
    host = etree.SubElement(source, "host", name=address)
    if port:
        host.set("port", str(port))
    etree.SubElement(disk, "target", dev=dev, bus="virtio")


def _domain_on_network_disks(
    name: str, guest: DiskGuest, disks: list[tuple[str, str, int | None, str]], address: str
) -> str:
    """The test guest's domain with its disks replaced by network ones:
    (protocol, source name, port, format) for vda (the boot disk), vdb…"""
    domain = etree.fromstring(guest_domain_xml(name, guest, disk=guest.disk))
    devices = domain.find("devices")
    assert devices is not None
    for old in devices.findall("disk"):
        devices.remove(old)
    for index, (protocol, source, port, fmt) in enumerate(disks):
        _network_disk(devices, protocol, source, address, port, f"vd{'abcd'[index]}", fmt)
    return etree.tostring(domain, encoding="unicode")


def _boot_and_write(
    conn: libvirt.virConnect, host: TestbedHost, name: str, xml: str
) -> libvirt.virDomain:
    """Start the domain, wait until it booted from its network disk (vda), then write MARK
    at byte 512 of its second disk (vdb) with an fsync, from the guest's shell."""
    dom = conn.createXML(xml, 0)
    log = SerialLog(host.base / "log" / "qemu" / Path(serial_log_path(name)).name)
    booted = log.wait_for(re.compile(BOOT_MARKER + rb" source=(\w+)"), BOOT_TIMEOUT)
    assert booted.group(1) == b"disk"  # SeaBIOS → syslinux → kernel, all read over the network
    stream = conn.newStream(0)
    dom.openConsole(None, stream, 0)
    try:
        stream.send(
            b"printf %s " + MARK + b" | dd of=/dev/vdb bs=512 seek=1 conv=fsync"
            b" && echo WRITTEN-$((6*7))\n"
        )
        log.wait_for(b"WRITTEN-42", 60, start=booted.end())
    finally:
        stream.abort()
    return dom


def test_nfs_guest_boots_from_an_nfs_disk_and_writes_to_another(
    h1: TestbedHost,
    h1_conn: libvirt.virConnect,
    storage_server: StorageServer,
    disk_guest: DiskGuest,
    tmp_path: Path,
) -> None:
    name = f"tb-nfs-{uuid.uuid4().hex[:6]}"
    boot, data = f"{name}-boot.qcow2", f"{name}-data.qcow2"
    # Both images are made over NFS from h1, as Corral will: nothing local on the host.
    _inside(h1, "qemu-img", "convert", "-O", "qcow2", str(disk_guest.disk.resolve()),
            storage_server.nfs_url(boot))  # fmt: skip
    _inside(h1, "qemu-img", "create", "-q", "-f", "qcow2", storage_server.nfs_url(data), "16M")
    disks: list[tuple[str, str, int | None, str]] = [
        ("nfs", f"/export/{boot}", None, "qcow2"),
        ("nfs", f"/export/{data}", None, "qcow2"),
    ]
    xml = _domain_on_network_disks(name, disk_guest, disks, storage_server.address)
    dom = _boot_and_write(h1_conn, h1, name, xml)
    dom.destroy()
    # What the server's disk holds (read locally, past the NFS client): the guest's bytes.
    raw = tmp_path / "data.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(storage_server.export_dir / data),
                    str(raw)], check=True, timeout=60)  # fmt: skip
    assert raw.read_bytes()[512 : 512 + len(MARK)] == MARK


def test_iscsi_guest_boots_from_a_lun_and_writes_to_another(
    h1: TestbedHost,
    h1_conn: libvirt.virConnect,
    storage_server: StorageServer,
    disk_guest: DiskGuest,
) -> None:
    name = f"tb-iscsi-{uuid.uuid4().hex[:6]}"
    # LUN 1 receives the boot disk over iSCSI from h1; LUN 2 is the data disk.
    _inside(h1, "qemu-img", "convert", "-n", "-O", "raw", str(disk_guest.disk.resolve()),
            storage_server.iscsi_url(1))  # fmt: skip
    iqn = storage_server.iqn
    disks: list[tuple[str, str, int | None, str]] = [
        ("iscsi", f"{iqn}/1", 3260, "raw"),
        ("iscsi", f"{iqn}/2", 3260, "raw"),
    ]
    xml = _domain_on_network_disks(name, disk_guest, disks, storage_server.address)
    dom = _boot_and_write(h1_conn, h1, name, xml)
    dom.destroy()
    with storage_server.lun_file(2).open("rb") as lun:
        lun.seek(512)
        assert lun.read(len(MARK)) == MARK


def _pids(netns: str) -> set[int]:
    done = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    return {int(p) for p in done.stdout.split()}


def test_nfs_and_iscsi_server_restarts_in_place_and_down_leaves_nothing(tmp_path: Path) -> None:
    """On a slot of its own: ``up`` replaces a running server (as after a crashed run), and
    ``down`` leaves no process, namespace, link or file."""
    slot, lock = allocate_slot()
    bed = MultiHostTestbed(tmp_path / "bed", hosts=1, slot=slot)
    server = StorageServer.for_testbed(bed, lun_sizes_mib=(8,))
    try:
        bed.up()
        server.up()
        first = _pids(server.netns)
        assert first
        server.up()
        assert not first & _pids(server.netns)
        # Reached from the machine's side of the bridge too (198.18.SLOT.254).
        info = subprocess.run(["qemu-img", "info", server.iscsi_url(1)], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert "virtual size: 8 MiB" in info.stdout, info.stderr
        second = _pids(server.netns)
        server.down()
        # Gone, not only dead: the machine's init reaps the namespace's reparented PID 1.
        wait_until(lambda: not any(Path(f"/proc/{p}").exists() for p in second), 10, "reaping")
        assert not Path(f"/run/netns/{server.netns}").exists()
        assert not Path(f"/sys/class/net/{server.veth}").exists()
        assert not server.base.exists()
        server.down()  # idempotent
    finally:
        server.down()
        bed.down()
        lock.close()
