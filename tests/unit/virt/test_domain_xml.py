"""Domain XML: golden files, parse(build(x)) round trips, and libvirt accepts what we build.

Regenerate the golden files with ``CORRAL_REGEN_GOLDEN=1`` (or ``--regen-golden``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.model.vm import Accelerator, BootSpec, DiskBus, DiskSpec, NicSpec, VmSpec
from corral.virt.domain_xml import Domain, HostDefaults, build_domain
from corral.virt.domain_xml.video import Video
from corral.virt.types import VolumeRef

DATA = Path(__file__).parent / "data"
POOL = "/var/lib/libvirt/corral/images"
TEST_URI = "test:///default"


def _vol(name: str, fmt: str = "qcow2") -> VolumeRef:
    return VolumeRef(name=name, path=f"{POOL}/{name}", format=fmt, capacity_bytes=2**30)


KERNEL = BootSpec(source="kernel", kernel="/srv/k/vmlinuz", initrd="/srv/k/initrd.gz",
                  cmdline="console=ttyS0 quiet")  # fmt: skip
CASES: dict[str, tuple[VmSpec, list[VolumeRef], HostDefaults]] = {
    "kernel_tcg": (
        VmSpec(
            name="web1",
            vcpus=1,
            memory_mib=256,
            disks=[DiskSpec(name="root", size_gib=1)],
            nics=[NicSpec(network="user")],
            boot=KERNEL,
            description="Web <front> & \"edge\" '1'",
        ),
        [_vol("web1-root.qcow2")],
        HostDefaults(accelerator=Accelerator.TCG),
    ),
    "disk_kvm_nat": (
        VmSpec(
            name="db1",
            vcpus=4,
            memory_mib=4096,
            disks=[
                DiskSpec(name="root", base_image="debian12"),
                DiskSpec(name="data", size_gib=20, bus=DiskBus.IDE),
            ],
            nics=[NicSpec(network="nat", mac="52:54:00:12:34:56")],
            description="database",
        ),
        [_vol("db1-root.qcow2"), _vol("db1-data.qcow2")],
        HostDefaults(accelerator=Accelerator.KVM, nat_network="corral-nat"),
    ),
    "cdrom_q35": (
        VmSpec(
            name="installer",
            memory_mib=1024,
            disks=[
                DiskSpec(name="root", size_gib=8, bus=DiskBus.SCSI),
                DiskSpec(name="legacy", import_path="/srv/old.img", bus=DiskBus.SATA),
            ],
            cdrom="/srv/iso/debian.iso",
            nics=[NicSpec(network="lab", model="e1000"), NicSpec(network="nat")],
            boot=BootSpec(source="cdrom"),
        ),
        [_vol("installer-root.qcow2"), _vol("installer-legacy.img", "raw")],
        HostDefaults(accelerator=Accelerator.TCG, machine="q35", video=Video.MODEL_VGA),
    ),
    "empty_cdrom_drive": (
        VmSpec(
            name="media",
            vcpus=2,
            memory_mib=512,
            disks=[DiskSpec(name="root", size_gib=4)],
            cdrom_drive=True,
            nics=[NicSpec(network="user")],
        ),
        [_vol("media-root.qcow2")],
        HostDefaults(accelerator=Accelerator.TCG),
    ),
    "control_chars": (
        VmSpec(name="odd", boot=KERNEL, description="line1\r\nbell\x07 nul\x00 ok"),
        [],
        HostDefaults(accelerator=Accelerator.TCG),
    ),
}


@pytest.fixture(scope="module")
def conn() -> Iterator[libvirt.virConnect]:
    c = libvirt.open(TEST_URI)
    for name in ("lab", "corral-nat"):
        if name not in [n.name() for n in c.listAllNetworks(0)]:
            net = c.networkDefineXML(f"<network><name>{name}</name></network>")
            net.create()
    yield c
    c.close()


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str, regen_golden: bool) -> None:
    spec, disks, host = CASES[case]
    xml = build_domain(spec, disks, host).to_xml()
    golden = DATA / f"{case}.xml"
    if regen_golden:
        golden.write_text(xml)
    assert xml == golden.read_text(), f"{golden} differs: CORRAL_REGEN_GOLDEN=1 rewrites it"


@pytest.mark.parametrize("case", sorted(CASES))
def test_parse_build_round_trip(case: str) -> None:
    spec, disks, host = CASES[case]
    built = build_domain(spec, disks, host)
    parsed = Domain.from_xml(built.to_xml())
    assert parsed.to_xml() == built.to_xml()
    assert parsed.name == spec.name
    assert parsed.memory.mib == spec.memory_mib
    assert parsed.vcpu.count == spec.vcpus
    assert parsed.description == spec.description
    assert parsed.accelerator is host.accelerator
    assert parsed.corral_managed
    assert [d.source_file for d in parsed.devices.disks if d.device == "disk"] == [
        v.path for v in disks
    ]


@pytest.mark.parametrize("case", sorted(CASES))
def test_libvirt_defines_and_starts_it(case: str, conn: libvirt.virConnect, unique: str) -> None:
    spec, disks, host = CASES[case]
    domain = build_domain(spec, disks, host)
    domain.name = f"{spec.name}-{unique}"
    dom = conn.defineXML(domain.to_xml())
    try:
        dom.create()
        assert dom.isActive()
        back = Domain.from_xml(dom.XMLDesc(0))
        assert back.description == spec.description
        assert back.corral_managed
        corral = back.metadata.corral()
        assert corral is not None
        assert sorted(corral.disk_names.values()) == sorted(d.name for d in spec.disks)
        assert back.os.kernel == spec.boot.kernel
        assert len(back.devices.interfaces) == len(spec.nics)
        dom.destroy()
    finally:
        dom.undefine()


def test_domain_types_follow_the_accelerator() -> None:
    spec, disks, _host = CASES["kernel_tcg"]
    kvm = build_domain(spec, disks, HostDefaults(accelerator=Accelerator.KVM))
    tcg = build_domain(spec, disks, HostDefaults(accelerator=Accelerator.TCG))
    assert (kvm.type, tcg.type) == ("kvm", "qemu")
    assert kvm.cpu.mode == "host-model"


def test_nat_without_network_falls_back_to_user_mode() -> None:
    spec = VmSpec(name="n1", boot=KERNEL, nics=[NicSpec(network="nat")])
    domain = build_domain(spec, [], HostDefaults(accelerator=Accelerator.TCG))
    (iface,) = domain.devices.interfaces
    assert (iface.type, iface.source_network) == ("user", None)


def test_adopted_domain_is_not_corral_managed(conn: libvirt.virConnect) -> None:
    domain = Domain.from_xml(conn.lookupByName("test").XMLDesc(0))
    assert not domain.corral_managed
    assert domain.description == ""
    assert domain.accelerator is None  # type='test'


# Every string a VmSpec accepts (pydantic refuses lone surrogates), control characters included.
any_text = st.text(st.characters(codec="utf-8"), max_size=1024)


@given(any_text)
def test_any_description_survives_build_and_parse(description: str) -> None:
    spec = VmSpec(name="d1", boot=KERNEL, description=description)
    xml = build_domain(spec, [], HostDefaults(accelerator=Accelerator.TCG)).to_xml()
    assert Domain.from_xml(xml).description == description


@settings(max_examples=40, deadline=None)
@given(description=any_text)
def test_any_description_survives_libvirt(conn: libvirt.virConnect, description: str) -> None:
    spec = VmSpec(name="desc-prop", boot=KERNEL, description=description)
    dom = conn.defineXML(build_domain(spec, [], HostDefaults(accelerator=Accelerator.TCG)).to_xml())
    try:
        assert Domain.from_xml(dom.XMLDesc(0)).description == description
    finally:
        dom.undefine()
