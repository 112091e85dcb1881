"""Changing a defined domain: its persistent definition (pure rewrites of :class:`Domain`) and
the running guest (vCPU and memory changes, device hot-plug). Blocking libvirt calls, run by
``LibvirtHost`` in worker threads.

Live changes are made with ``AFFECT_LIVE | AFFECT_CONFIG`` (persistent domains): libvirt changes
the running guest first and saves the definition only when that worked, so a failed live change
leaves both as they were. Memory is the exception: libvirt's live change only asks the guest's
balloon, so the caller watches what the guest does and keeps the size in the definition only
once the guest has it. Rewrites of the definition alone are ``defineXML`` of the changed
persistent XML: a running domain gets them at its next start.
"""

from __future__ import annotations

from collections.abc import Callable

import libvirt
from lxml import etree

from corral.errors import NotFound
from corral.model.arch import CpuTopology
from corral.virt._description import _without_namespace
from corral.virt.domain_xml import Domain
from corral.virt.domain_xml.cpu import Cpu
from corral.virt.domain_xml.disk import Disk
from corral.virt.domain_xml.interface import Interface
from corral.virt.domain_xml.metadata import NAMESPACE, PREFIX, CorralDisk

_PERSISTENT_XML = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE

Rewrite = Callable[[Domain], None]


def _flags(dom: libvirt.virDomain, live: bool) -> int:
    flags = libvirt.VIR_DOMAIN_AFFECT_LIVE if live else 0
    if dom.isPersistent() or not live:
        flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
    return flags


def redefine(conn: libvirt.virConnect, dom: libvirt.virDomain, rewrite: Rewrite) -> None:
    """Rewrite the persistent definition (a running domain keeps running as it is)."""
    domain = Domain.from_xml(dom.XMLDesc(_PERSISTENT_XML))
    rewrite(domain)
    conn.defineXML(domain.to_xml())


def set_vcpus(dom: libvirt.virDomain, count: int) -> None:
    """Plug vCPUs in or out of the running guest (and its definition), up to ``<vcpu>``."""
    dom.setVcpusFlags(count, _flags(dom, True))


def set_balloon(dom: libvirt.virDomain, mib: int) -> None:
    """Ask the running guest's balloon for ``mib`` MiB. Only a request: the guest's balloon
    driver gives or takes the memory when it gets to it, and without a driver nothing happens
    (read :func:`guest_memory_mib` to see what it did)."""
    dom.setMemoryFlags(mib * 1024, libvirt.VIR_DOMAIN_AFFECT_LIVE)


def guest_memory_mib(dom: libvirt.virDomain) -> int:
    """The memory the running guest has now (libvirt's current memory, as ``virsh dominfo``
    shows it: the balloon's actual size, which QEMU reports as the guest's driver moves it)."""
    return int(dom.info()[2]) // 1024


def keep_memory(dom: libvirt.virDomain, mib: int) -> None:
    """``<currentMemory>`` of the definition: what the guest gets from its next start on."""
    if dom.isPersistent():
        dom.setMemoryFlags(mib * 1024, libvirt.VIR_DOMAIN_AFFECT_CONFIG)


def attach(dom: libvirt.virDomain, device_xml: str, live: bool) -> None:
    dom.attachDeviceFlags(device_xml, _flags(dom, live))


def detach(dom: libvirt.virDomain, device_xml: str, *, live: bool, config: bool) -> None:
    flags = (libvirt.VIR_DOMAIN_AFFECT_LIVE if live else 0) | (
        libvirt.VIR_DOMAIN_AFFECT_CONFIG if config else 0
    )
    dom.detachDeviceFlags(device_xml, flags)


def set_disk_name(dom: libvirt.virDomain, target: str, name: str | None, live: bool) -> None:
    """Record (or with ``None`` forget) Corral's name of the disk at ``target`` in Corral's
    metadata, in the running guest's XML and in the definition."""
    for flags, xml_flags in (
        (libvirt.VIR_DOMAIN_AFFECT_LIVE, 0),
        (libvirt.VIR_DOMAIN_AFFECT_CONFIG, _PERSISTENT_XML),
    ):
        if flags == libvirt.VIR_DOMAIN_AFFECT_LIVE and not live:
            continue
        if flags == libvirt.VIR_DOMAIN_AFFECT_CONFIG and not dom.isPersistent():
            continue
        domain = Domain.from_xml(dom.XMLDesc(xml_flags))
        _name_disk(domain, target, name)
        corral = domain.metadata.corral()
        assert corral is not None
        element = etree.tostring(_without_namespace(corral.node), encoding="unicode")
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, element, PREFIX, NAMESPACE, flags)


# -- pure rewrites of a definition -----------------------------------------------------------
def sizes(
    vcpus: int | None,
    max_vcpus: int | None,
    memory_mib: int | None,
    max_memory_mib: int | None,
    topology: CpuTopology | None,
) -> Rewrite:
    """A rewrite of ``<vcpu>``, ``<memory>``/``<currentMemory>`` and the CPU topology. The
    caller has checked the numbers against each other."""

    def rewrite(domain: Domain) -> None:
        vcpu = domain.vcpu
        current = vcpus if vcpus is not None else (vcpu.current or vcpu.count or 1)
        ceiling = max_vcpus if max_vcpus is not None else (vcpu.count or current)
        vcpu.count = ceiling
        vcpu.current = current if current != ceiling else None
        _memory(domain, memory_mib, max_memory_mib)
        if topology is not None:
            cpu: Cpu = domain.cpu
            cpu.sockets, cpu.dies = topology.sockets, 1
            cpu.cores, cpu.threads = topology.cores, topology.threads

    return rewrite


def _memory(domain: Domain, memory_mib: int | None, max_memory_mib: int | None) -> None:
    has_current = domain.node.find("currentMemory") is not None
    now = domain.current_memory.mib if has_current else domain.memory.mib
    current = memory_mib if memory_mib is not None else now
    ceiling = max_memory_mib if max_memory_mib is not None else domain.memory.mib
    domain.memory.mib = ceiling
    domain.current_memory.mib = current


def device_element(xml: str, kind: str, key: str) -> str:
    """The ``<disk>`` with target ``key`` or the ``<interface>`` with MAC ``key`` of a domain's
    XML, as libvirt wants it for a detach: without its ``<address>`` and ``<alias>``, so that
    libvirt finds it by target or MAC in the running guest and in the definition alike. Both
    place a device apart (a NIC plugged in while an unplugged disk still held its slot in the
    guest sits elsewhere in the definition), and libvirt matches an interface by every one of
    them given ("no device found at address …")."""
    devices = Domain.from_xml(xml).devices
    element: Disk | Interface | None
    if kind == "disk":
        element = next((d for d in devices.disks if d.target_dev == key), None)
    else:
        element = next((n for n in devices.interfaces if n.mac == key), None)
    if element is None:
        raise NotFound(f"the domain has no {kind} {key}")
    for placement in element.node.findall("address") + element.node.findall("alias"):
        element.node.remove(placement)
    return element.to_xml()


def add_device(device_xml: str, disk_name: str | None = None) -> Rewrite:
    """A rewrite adding a ``<disk>`` or ``<interface>`` (with Corral's name for a disk)."""

    def rewrite(domain: Domain) -> None:
        element = etree.fromstring(device_xml.encode())
        kind = Disk if element.tag == Disk.XML_NAME else Interface
        device = domain.devices.add_child(kind(element))
        if isinstance(device, Disk) and disk_name is not None and device.target_dev:
            _name_disk(domain, device.target_dev, disk_name)

    return rewrite


def remove_device(kind: str, key: str) -> Rewrite:
    """A rewrite removing the ``<disk>`` at target ``key`` or the ``<interface>`` with MAC
    ``key`` (and Corral's name of the disk)."""

    def rewrite(domain: Domain) -> None:
        devices = domain.devices
        found: Disk | Interface | None
        if kind == "disk":
            found = next((d for d in devices.disks if d.target_dev == key), None)
        else:
            found = next((n for n in devices.interfaces if n.mac == key), None)
        if found is None:
            raise NotFound(f"the domain has no {kind} {key}")
        devices.remove_child(found)
        if kind == "disk":
            _name_disk(domain, key, None)

    return rewrite


def _name_disk(domain: Domain, target: str, name: str | None) -> None:
    corral = domain.metadata.corral(create=True)
    assert corral is not None
    for disk in corral.children(CorralDisk):
        if disk.target == target:
            corral.remove_child(disk)
    if name is not None:
        corral.add_disk(name, target)
