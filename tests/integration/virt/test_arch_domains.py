"""Every golden domain of tests/unit/virt (x86_64, aarch64, s390x, riscv64; topologies, CPU
hot-plug, nesting) is accepted by a real libvirtd with QEMU's capabilities, not only by the test
driver: machine types, buses, consoles, firmware and CPU settings all pass libvirt's checks.
KVM cases of architectures this machine cannot run under KVM are refused for that reason only."""

from __future__ import annotations

import platform
from collections.abc import Iterator

import libvirt
import pytest

from corral.model.vm import Accelerator
from corral.testbed.private_libvirtd import PrivateLibvirtd
from corral.virt.domain_xml import Domain, build_domain
from tests.unit.virt.test_domain_xml import CASES


@pytest.fixture(scope="module")
def real(virt_libvirtd: PrivateLibvirtd) -> Iterator[libvirt.virConnect]:
    conn = libvirt.open(virt_libvirtd.uri)
    for name in ("lab", "corral-nat"):
        if name not in [n.name() for n in conn.listAllNetworks(0)]:
            conn.networkDefineXML(f"<network><name>{name}</name></network>")
    yield conn
    conn.close()


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_real_libvirtd_defines_it(real: libvirt.virConnect, case: str) -> None:
    spec, disks, host = CASES[case]
    domain = build_domain(spec, disks, host)
    domain.name = f"golden-{case}"
    if host.accelerator is Accelerator.KVM and host.arch != platform.machine():
        # KVM runs guests of the machine's own architecture only: libvirt must say so (and
        # nothing else must be wrong with the domain).
        with pytest.raises(libvirt.libvirtError, match="does not support virt type 'kvm'"):
            real.defineXML(domain.to_xml())
        return
    dom = real.defineXML(domain.to_xml())
    try:
        back = Domain.from_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        assert back.os.arch == host.arch
        assert (host.machine or "pc") in (back.os.machine or "")  # q35 is pc-q35-7.2
        assert back.vcpu.count == (spec.max_vcpus or spec.vcpus)
    finally:
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
