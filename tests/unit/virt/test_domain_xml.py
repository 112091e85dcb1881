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

from corral.model.arch import Arch, CpuSpec, CpuTopology
from corral.model.vm import Accelerator, BootSpec, DiskBus, DiskSpec, NicSpec, VmSpec
from corral.virt.domain_xml import Domain, HostDefaults, build_domain
from corral.virt.domain_xml.disk import NetworkSource, network_source
from corral.virt.domain_xml.video import Video
from corral.virt.types import VolumeRef

DATA = Path(__file__).parent / "data"
POOL = "/var/lib/libvirt/corral/images"
TEST_URI = "test:///default"
NAS = "198.18.0.200"
IQN = "iqn.2026-12.test.corral:storage"


def _vol(name: str, fmt: str = "qcow2") -> VolumeRef:
    return VolumeRef(name=name, path=f"{POOL}/{name}", format=fmt, capacity_bytes=2**30)


KERNEL = BootSpec(source="kernel", kernel="/srv/k/vmlinuz", initrd="/srv/k/initrd.gz",
                  cmdline="console=ttyS0 quiet")  # fmt: skip
TCG = Accelerator.TCG
KVM = Accelerator.KVM


def _kernel(console: str) -> BootSpec:
    return KERNEL.model_copy(update={"cmdline": f"console={console}"})


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
        VmSpec(name="odd", nics=[], boot=KERNEL, description="line1\r\nbell\x07 nul\x00 ok"),
        [],
        HostDefaults(accelerator=Accelerator.TCG),
    ),
    # Architectures: machine type, buses, firmware, console, screen follow from the arch.
    "aarch64_kernel_tcg": (
        VmSpec(
            name="arm1",
            arch=Arch.AARCH64,
            vcpus=2,
            memory_mib=256,
            disks=[DiskSpec(name="data", size_gib=1)],
            nics=[NicSpec(network="user")],
            boot=_kernel("ttyAMA0"),
        ),
        [_vol("arm1-data.qcow2")],
        HostDefaults(accelerator=TCG, arch="aarch64", machine="virt"),
    ),
    "aarch64_uefi_kvm": (
        VmSpec(
            name="arm2",
            arch=Arch.AARCH64,
            memory_mib=2048,
            disks=[DiskSpec(name="root", size_gib=10)],
            cdrom="/srv/iso/debian-arm64.iso",
            nics=[NicSpec(network="nat", mac="52:54:00:aa:bb:cc")],
            boot=BootSpec(source="cdrom"),
        ),
        [_vol("arm2-root.qcow2")],
        HostDefaults(accelerator=KVM, arch="aarch64", machine="virt", nat_network="corral-nat"),
    ),
    "s390x_kernel_tcg": (
        VmSpec(
            name="z1",
            arch=Arch.S390X,
            memory_mib=256,
            disks=[DiskSpec(name="data", size_gib=1)],
            nics=[NicSpec(network="user")],
            boot=_kernel("ttysclp0"),
        ),
        [_vol("z1-data.qcow2")],
        HostDefaults(accelerator=TCG, arch="s390x", machine="s390-ccw-virtio"),
    ),
    "s390x_kvm_nested_topology": (
        VmSpec(
            name="z2",
            arch=Arch.S390X,
            vcpus=16,
            max_vcpus=64,
            memory_mib=4096,
            max_memory_mib=16384,
            cpu=CpuSpec(topology=CpuTopology(sockets=4, cores=16, threads=1), nested=True),
            disks=[
                DiskSpec(name="root", base_image="sles15"),
                DiskSpec(name="db", size_gib=50, bus=DiskBus.SCSI),
            ],
            nics=[NicSpec(network="nat")],
        ),
        [_vol("z2-root.qcow2"), _vol("z2-db.qcow2")],
        HostDefaults(
            accelerator=KVM, arch="s390x", machine="s390-ccw-virtio", nat_network="corral-nat"
        ),
    ),
    "riscv64_kernel_tcg": (
        VmSpec(name="rv1", nics=[], arch=Arch.RISCV64, memory_mib=256, boot=_kernel("ttyS0")),
        [],
        HostDefaults(accelerator=TCG, arch="riscv64", machine="virt"),
    ),
    # x86: a 64-vCPU topology on q35, CPU hot-plug and balloon ceilings, nested virtualization.
    "x86_q35_64_vcpus": (
        VmSpec(
            name="big",
            nics=[],
            vcpus=64,
            memory_mib=1024,
            machine="q35",
            cpu=CpuSpec(topology=CpuTopology(sockets=4, cores=8, threads=2)),
            boot=KERNEL,
        ),
        [],
        HostDefaults(accelerator=TCG, machine="q35"),
    ),
    "x86_hotplug_max_cpu": (
        VmSpec(
            name="grow",
            nics=[],
            vcpus=1,
            max_vcpus=4,
            memory_mib=256,
            max_memory_mib=1024,
            cpu=CpuSpec(model="max"),
            disks=[DiskSpec(name="data", size_gib=1)],
            boot=KERNEL,
        ),
        [_vol("grow-data.qcow2")],
        HostDefaults(accelerator=TCG),
    ),
    "x86_nested_tcg": (
        VmSpec(name="hv1", nics=[], memory_mib=512, cpu=CpuSpec(nested=True), boot=KERNEL),
        [],
        HostDefaults(accelerator=TCG),
    ),
    "x86_nested_kvm_named_model": (
        VmSpec(
            name="hv2",
            nics=[],
            vcpus=4,
            memory_mib=4096,
            cpu=CpuSpec(
                model="Skylake-Server",
                nested=True,
                topology=CpuTopology(sockets=1, cores=2, threads=2),
            ),
            boot=KERNEL,
        ),
        [],
        HostDefaults(accelerator=KVM, nested_feature="vmx"),
    ),
    # Volumes of nfs and iscsi storage domains: their paths are URLs, their disks network ones.
    "network_disks": (
        VmSpec(
            name="net1",
            nics=[],
            disks=[DiskSpec(name="root", size_gib=1), DiskSpec(name="data", size_gib=1)],
            boot=KERNEL,
        ),
        [
            VolumeRef("net1-root.qcow2", f"nfs://{NAS}/export/net1-root.qcow2", "qcow2", 2**30),
            VolumeRef("lun-1", f"iscsi://{NAS}:3260/{IQN}/1", "raw", 2**30),
        ],
        HostDefaults(accelerator=TCG),
    ),
    # A volume of a shared-dir storage domain: a file other hosts open too, so no host cache.
    "shared_dir_disk": (
        VmSpec(name="sd1", nics=[], disks=[DiskSpec(name="root", size_gib=1)], boot=KERNEL),
        [VolumeRef("sd1-root.qcow2", "/srv/shared/sd1-root.qcow2", "qcow2", 2**30, shared=True)],
        HostDefaults(accelerator=TCG),
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
    assert parsed.memory.mib == (spec.max_memory_mib or spec.memory_mib)
    assert parsed.vcpu.count == (spec.max_vcpus or spec.vcpus)
    assert (parsed.vcpu.current or parsed.vcpu.count) == spec.vcpus
    assert parsed.description == spec.description
    assert parsed.accelerator is host.accelerator
    assert parsed.corral_managed
    assert [d.path for d in parsed.devices.disks if d.device == "disk"] == [v.path for v in disks]


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


@pytest.mark.parametrize(
    ("cdrom", "relabelled"),
    [
        ("/var/lib/libvirt/corral/images/_iso.debian.iso", True),  # the library's, in the pool
        ("/srv/iso/debian.iso", False),  # an admin's host file
        ("/var/lib/libvirt/corral/images-other/x.iso", False),  # merely starts like the pool
        ("/srv/shared/_iso.debian.iso", True),  # the library's, in a shared-dir domain
    ],
)
def test_only_the_libraries_cdrom_files_are_relabelled(cdrom: str, relabelled: bool) -> None:
    spec = VmSpec(name="media", cdrom=cdrom, boot=BootSpec(source="cdrom"))
    xml = build_domain(spec, [], HostDefaults(accelerator=Accelerator.TCG)).to_xml()
    assert ('<seclabel model="dac" relabel="no"/>' not in xml) is relabelled


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"nfs://{NAS}/export/a.qcow2", NetworkSource("nfs", "/export/a.qcow2", NAS)),
        ("nfs://nas.example/srv/x/a.qcow2", NetworkSource("nfs", "/srv/x/a.qcow2", "nas.example")),
        (f"iscsi://{NAS}:3260/{IQN}/1", NetworkSource("iscsi", f"{IQN}/1", NAS, 3260)),
        (f"iscsi://[fd00::1]/{IQN}/0", NetworkSource("iscsi", f"{IQN}/0", "[fd00::1]")),
        ("/var/lib/libvirt/images/a.qcow2", None),
        (f"nfs://{NAS}", None),
        ("rbd://pool/img", None),
    ],
)
def test_network_volume_paths_are_urls_of_network_sources(
    path: str, expected: NetworkSource | None
) -> None:
    source = network_source(path)
    assert source == expected
    if source is not None:
        assert source.url == path
