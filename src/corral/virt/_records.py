"""libvirt objects → Corral's typed values (runs in worker threads: blocking calls)."""

from __future__ import annotations

import contextlib
import posixpath
import time

import libvirt
from lxml import etree

from corral.model.host import HostCapabilities
from corral.model.vm import Accelerator, DiskInfo, NicInfo, VmState
from corral.virt.domain_xml import Domain
from corral.virt.types import DomainRecord

_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: VmState.UNKNOWN,
    libvirt.VIR_DOMAIN_RUNNING: VmState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: VmState.BLOCKED,
    libvirt.VIR_DOMAIN_PAUSED: VmState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: VmState.SHUTTING_DOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: VmState.SHUTOFF,
    libvirt.VIR_DOMAIN_CRASHED: VmState.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: VmState.SUSPENDED,
}


def _disks(dom: libvirt.virDomain, domain: Domain) -> list[DiskInfo]:
    corral = domain.metadata.corral() if domain.has_metadata else None
    names = corral.disk_names if corral is not None else {}
    result = []
    for disk in domain.devices.disks:
        target = disk.target_dev or ""
        path = disk.path
        capacity = None
        if path and disk.device != "cdrom":
            # blockInfo works on inactive domains too; an unreadable image must not hide the VM.
            with contextlib.suppress(libvirt.libvirtError):
                capacity = int(dom.blockInfo(target)[0])
        result.append(
            DiskInfo(
                name=names.get(target) or posixpath.basename(path) or target,
                target=target,
                path=path,
                bus=disk.target_bus or "",
                capacity_bytes=capacity,
                device="cdrom" if disk.device == "cdrom" else "disk",
            )
        )
    return result


def _nics(domain: Domain) -> list[NicInfo]:
    return [
        NicInfo(
            mac=nic.mac or "",
            network=nic.source_network or (nic.type or ""),
            model=nic.model or "",
        )
        for nic in domain.devices.interfaces
    ]


def domain_record(dom: libvirt.virDomain, started_at: dict[str, float]) -> DomainRecord:
    """Build the record; ``started_at`` maps UUIDs to the monotonic time a start was seen."""
    xml = dom.XMLDesc(0)
    domain = Domain.from_xml(xml)
    state_code, _reason = dom.state()
    state = _STATES.get(state_code, VmState.UNKNOWN)
    _state, _max_kib, memory_kib, vcpus, cpu_time_ns = dom.info()
    active = bool(dom.isActive())
    uuid = dom.UUIDString()
    start = started_at.get(uuid) if active else None
    return DomainRecord(
        uuid=uuid,
        name=dom.name(),
        state=state,
        vcpus=int(vcpus),
        memory_mib=int(memory_kib) // 1024,
        cpu_time_s=cpu_time_ns / 1e9 if active else None,
        uptime_s=time.monotonic() - start if start is not None else None,
        description=domain.description,
        accelerator=domain.accelerator,
        disks=_disks(dom, domain),
        nics=_nics(domain),
        corral_managed=domain.corral_managed,
        xml=xml,
    )


def disk_users(conn: libvirt.virConnect) -> dict[str, set[str]]:
    """File or device path -> names of the domains whose disks or CD-ROM drives hold it, in
    their live or their persistent definition (the next boot counts too)."""
    users: dict[str, set[str]] = {}
    for dom in conn.listAllDomains(0):
        try:
            xmls = [dom.XMLDesc(0)]
            if dom.isActive() and dom.isPersistent():
                xmls.append(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            name = dom.name()
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise
            continue  # vanished meanwhile: uses nothing
        for xml in xmls:
            for disk in Domain.from_xml(xml).devices.disks:
                if disk.path:
                    users.setdefault(disk.path, set()).add(name)
    return users


def _version(number: int) -> str:
    major, rest = divmod(number, 1_000_000)
    minor, micro = divmod(rest, 1000)
    return f"{major}.{minor}.{micro}"


def kvm_available(conn: libvirt.virConnect, caps: etree._Element, arch: str) -> bool:
    """KVM is usable when the domain capabilities for ``kvm`` exist (capabilities XML else)."""
    try:
        conn.getDomainCapabilities(None, arch, None, "kvm", 0)
        return True
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            return False
    return bool(caps.xpath(f"guest/arch[@name='{arch}']/domain[@type='kvm']"))


def node_memory_mib(conn: libvirt.virConnect, cells_total_mib: int) -> tuple[int, int]:
    """Total and available memory of the host, in MiB.

    ``getInfo`` and ``getFreeMemory`` add up the NUMA cells, which under-count on some kernels
    and containers (5.3 of 23.5 GiB seen); the node memory statistics read /proc/meminfo.
    Available = free + buffers + page cache, as QEMU can have those."""
    try:
        stats = conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)
    except libvirt.libvirtError:
        stats = {}
    if stats.get("total", 0) // 1024 >= cells_total_mib:
        available = stats.get("free", 0) + stats.get("buffers", 0) + stats.get("cached", 0)
        return int(stats["total"]) // 1024, int(available) // 1024
    return cells_total_mib, int(conn.getFreeMemory()) // (1024 * 1024)


def host_capabilities(conn: libvirt.virConnect) -> HostCapabilities:
    caps = etree.fromstring(conn.getCapabilities().encode())
    arch = caps.findtext("host/cpu/arch") or "x86_64"
    _model, cells_memory_mib, cpus, *_rest = conn.getInfo()
    memory_mib, free_memory_mib = node_memory_mib(conn, int(cells_memory_mib))
    accelerators = [Accelerator.KVM] if kvm_available(conn, caps, arch) else []
    accelerators.append(Accelerator.TCG)
    qemu_version = _version(conn.getVersion()) if conn.getType() == "QEMU" else None
    return HostCapabilities(
        hostname=conn.getHostname(),
        host_uuid=(caps.findtext("host/uuid") or "").strip() or None,
        arch=arch,
        cpus=int(cpus),
        memory_mib=memory_mib,
        free_memory_mib=free_memory_mib,
        accelerators=accelerators,
        libvirt_version=_version(conn.getLibVersion()),
        qemu_version=qemu_version,
    )
