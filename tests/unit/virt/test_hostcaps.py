"""What a host can run, parsed from capabilities XML as libvirt 9.0 writes it; nesting rules;
definition rewrites for edits."""

from __future__ import annotations

from corral.model.arch import CpuTopology
from corral.model.vm import Accelerator
from corral.virt._edit import add_device, remove_device, sizes
from corral.virt._hostcaps import (
    GuestCatalog,
    HostCpu,
    default_machine,
    guest_info,
    nesting_possible,
    parse_catalog,
    parse_domain_caps,
)
from corral.virt.domain_xml import Domain

CAPS = """<capabilities>
  <host><uuid>6c26717e-db68-4b32-a2a4-c0b3dfc3f6e1</uuid>
    <cpu><arch>x86_64</arch><model>kvm64</model><vendor>AMD</vendor>
      <feature name='vme'/><feature name='ht'/></cpu></host>
  <guest><os_type>hvm</os_type>
    <arch name='aarch64'><emulator>/usr/bin/qemu-system-aarch64</emulator>
      <machine maxCpus='1'>integratorcp</machine>
      <machine maxCpus='512'>virt-7.2</machine>
      <machine canonical='virt-7.2' maxCpus='512'>virt</machine>
      <domain type='qemu'/></arch></guest>
  <guest><os_type>hvm</os_type>
    <arch name='s390x'><emulator>/usr/bin/qemu-system-s390x</emulator>
      <machine maxCpus='248'>s390-ccw-virtio-7.2</machine>
      <machine canonical='s390-ccw-virtio-7.2' maxCpus='248'>s390-ccw-virtio</machine>
      <domain type='qemu'/></arch></guest>
  <guest><os_type>hvm</os_type>
    <arch name='x86_64'><emulator>/usr/bin/qemu-system-x86_64</emulator>
      <machine maxCpus='255'>pc-i440fx-7.2</machine>
      <machine canonical='pc-i440fx-7.2' maxCpus='255'>pc</machine>
      <machine canonical='pc-q35-7.2' maxCpus='288'>q35</machine>
      <domain type='qemu'/><domain type='kvm'/></arch></guest>
</capabilities>"""

DOMCAPS_KVM = """<domainCapabilities><machine>pc-q35-7.2</machine><arch>x86_64</arch>
  <vcpu max='288'/>
  <os supported='yes'><loader supported='yes'/></os>
  <cpu>
    <mode name='host-passthrough' supported='yes'/>
    <mode name='maximum' supported='yes'/>
    <mode name='host-model' supported='yes'><model fallback='forbid'>EPYC</model>
      <feature policy='require' name='x2apic'/><feature policy='disable' name='svm'/></mode>
    <mode name='custom' supported='yes'>
      <model usable='yes' vendor='unknown'>qemu64</model>
      <model usable='no' vendor='Intel'>Skylake-Server</model>
      <model usable='yes' vendor='AMD'>EPYC</model></mode>
  </cpu></domainCapabilities>"""

DOMCAPS_ARM = """<domainCapabilities><machine>virt-7.2</machine><arch>aarch64</arch>
  <vcpu max='512'/>
  <os supported='yes'><loader supported='yes'><value>/usr/share/AAVMF/AAVMF_CODE.fd</value>
  </loader></os>
  <cpu><mode name='host-passthrough' supported='no'/><mode name='maximum' supported='yes'/>
    <mode name='host-model' supported='no'/>
    <mode name='custom' supported='yes'><model usable='unknown'>cortex-a57</model>
      <model usable='unknown'>max</model><model usable='unknown'>a64fx</model></mode>
  </cpu></domainCapabilities>"""


def test_the_catalog_names_architectures_machines_and_accelerators() -> None:
    catalog = parse_catalog(CAPS)
    assert sorted(catalog.guests) == ["aarch64", "s390x", "x86_64"]
    assert catalog.host_cpu == HostCpu("x86_64", "AMD", frozenset({"vme", "ht"}))
    x86 = catalog.guests["x86_64"]
    assert x86.accelerators == [Accelerator.KVM, Accelerator.TCG]
    q35 = x86.machine("q35")
    assert q35 is not None and (q35.canonical, q35.max_vcpus) == ("pc-q35-7.2", 288)
    assert x86.machine("pc-q35-7.2") is q35  # found by its canonical name too
    # Corral's defaults where offered; else libvirt's (the first listed).
    assert default_machine(catalog.guests["aarch64"]) == "virt"
    assert default_machine(catalog.guests["s390x"]) == "s390-ccw-virtio"
    assert default_machine(x86) == "pc-i440fx-7.2"


def test_domain_capabilities_give_limits_cpus_and_firmware() -> None:
    kvm = parse_domain_caps(DOMCAPS_KVM)
    assert kvm.max_vcpus == 288
    assert kvm.cpu_modes == ["host-model", "host-passthrough", "max"]
    assert kvm.cpu_models == ["EPYC", "qemu64"]  # Skylake-Server is not usable here
    assert kvm.host_model_disabled == {"svm"}
    arm = parse_domain_caps(DOMCAPS_ARM)
    assert arm.cpu_modes == ["max"] and arm.cpu_models == ["a64fx", "cortex-a57"]
    assert arm.firmware == ["/usr/share/AAVMF/AAVMF_CODE.fd"]


def test_nesting_follows_the_architecture_accelerator_and_host() -> None:
    amd = HostCpu("x86_64", "AMD", frozenset())
    caps = parse_domain_caps(DOMCAPS_KVM)
    assert nesting_possible("x86_64", Accelerator.TCG, amd, None) == ("svm", "")
    feature, why = nesting_possible("x86_64", Accelerator.KVM, amd, caps)
    assert feature is None and "kvm_amd with nested=1" in why
    nesting = HostCpu("x86_64", "Intel", frozenset({"vmx"}))
    assert nesting_possible("x86_64", Accelerator.KVM, nesting, None) == ("vmx", "")
    feature, why = nesting_possible("s390x", Accelerator.TCG, amd, None)
    assert feature is None and "TCG" in why and "SIE" in why
    feature, why = nesting_possible("aarch64", Accelerator.TCG, amd, None)
    assert feature is None and "x86_64 and s390x" in why


def test_guest_info_for_host_show() -> None:
    catalog = parse_catalog(CAPS)
    info = guest_info(
        catalog.guests["aarch64"], catalog, {Accelerator.TCG: parse_domain_caps(DOMCAPS_ARM)}
    )
    assert (info.default_machine, info.max_vcpus, info.console) == ("virt", 512, "ttyAMA0")
    assert info.cpu_models == ["max", "a64fx", "cortex-a57"]
    assert info.nested == []
    bare = guest_info(catalog.guests["s390x"], GuestCatalog(catalog.host_cpu, {}, 32), {})
    assert bare.max_vcpus == 248  # from the machine type when libvirt gives no domain caps


BASE = """<domain type='qemu'><name>e1</name><memory unit='MiB'>512</memory>
  <vcpu placement='static'>2</vcpu><os><type arch='x86_64'>hvm</type></os>
  <devices><disk type='file' device='disk'><source file='/p/e1-root.qcow2'/>
  <target dev='vda' bus='virtio'/></disk></devices></domain>"""


def test_size_rewrites_keep_current_and_maximum_apart() -> None:
    domain = Domain.from_xml(BASE)
    sizes(2, 8, 512, 2048, CpuTopology(sockets=2, cores=4, threads=1))(domain)
    assert (domain.vcpu.current, domain.vcpu.count) == (2, 8)
    assert (domain.current_memory.mib, domain.memory.mib) == (512, 2048)
    assert (domain.cpu.sockets, domain.cpu.cores, domain.cpu.threads) == (2, 4, 1)
    sizes(8, None, None, None, None)(domain)
    assert (domain.vcpu.current, domain.vcpu.count) == (None, 8)  # no current when equal


def test_device_rewrites_add_and_remove_with_disk_names() -> None:
    domain = Domain.from_xml(BASE)
    disk = (
        "<disk type='file' device='disk'><source file='/p/x'/>"
        "<target dev='vdb' bus='virtio'/></disk>"
    )
    add_device(disk, "data")(domain)
    corral = domain.metadata.corral()
    assert corral is not None and corral.disk_names == {"vdb": "data"}
    assert [d.target_dev for d in domain.devices.disks] == ["vda", "vdb"]
    add_device("<interface type='user'><mac address='52:54:00:00:00:07'/></interface>")(domain)
    remove_device("interface", "52:54:00:00:00:07")(domain)
    remove_device("disk", "vdb")(domain)
    assert domain.devices.interfaces == [] and corral.disk_names == {}
