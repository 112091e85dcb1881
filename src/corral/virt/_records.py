"""libvirt objects → Corral's typed values (runs in worker threads: blocking calls)."""

from __future__ import annotations

import contextlib
import dataclasses
import posixpath
import time

import libvirt
from lxml import etree

from corral.model.arch import CPU_HOST_MODEL, CPU_HOST_PASSTHROUGH, CPU_MAX, CpuInfo, CpuTopology
from corral.model.host import HostCapabilities
from corral.model.vm import Accelerator, DiskInfo, NextStart, NicInfo, Pending, VmState
from corral.virt.domain_xml import Domain
from corral.virt.domain_xml.cpu import Cpu
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


_NESTED_FEATURES = {"vmx", "svm", "sie"}
_MODE_NAMES = {
    Cpu.MODE_HOST_MODEL: CPU_HOST_MODEL,
    Cpu.MODE_HOST_PASSTHROUGH: CPU_HOST_PASSTHROUGH,
    Cpu.MODE_MAXIMUM: CPU_MAX,
}


def _disk_names(*domains: Domain | None) -> dict[str, str]:
    names: dict[str, str] = {}
    for domain in domains:
        corral = domain.metadata.corral() if domain and domain.has_metadata else None
        if corral is not None:
            names = {**corral.disk_names, **names}
    return names


def _disks(dom: libvirt.virDomain, domain: Domain, next_boot: Domain | None) -> list[DiskInfo]:
    """The domain's disks; with ``next_boot`` (a running domain's persistent definition) those
    only one of them has are marked ``pending``."""
    names = _disk_names(domain, next_boot)
    live = {d.target_dev for d in domain.devices.disks}
    later = {d.target_dev for d in next_boot.devices.disks} if next_boot else live
    entries = [(d, "detach" if d.target_dev not in later else None) for d in domain.devices.disks]
    if next_boot is not None:
        entries += [(d, "attach") for d in next_boot.devices.disks if d.target_dev not in live]
    result = []
    for disk, pending in entries:
        target = disk.target_dev or ""
        path = disk.path
        capacity = None
        if path and disk.device != "cdrom" and pending != "attach":
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
                pending=_pending(pending),
            )
        )
    return result


def _pending(value: str | None) -> Pending | None:
    return "attach" if value == "attach" else "detach" if value == "detach" else None


def _nics(domain: Domain, next_boot: Domain | None) -> list[NicInfo]:
    live = {n.mac for n in domain.devices.interfaces}
    later = {n.mac for n in next_boot.devices.interfaces} if next_boot else live
    entries = [(n, "detach" if n.mac not in later else None) for n in domain.devices.interfaces]
    if next_boot is not None:
        entries += [(n, "attach") for n in next_boot.devices.interfaces if n.mac not in live]
    return [
        NicInfo(
            mac=nic.mac or "",
            network=nic.source_network or (nic.type or ""),
            model=nic.model or "",
            pending=_pending(pending),
        )
        for nic, pending in entries
    ]


def cpu_info(domain: Domain) -> CpuInfo | None:
    if domain.node.find(Cpu.XML_NAME) is None:
        return None
    cpu = domain.cpu
    model = _MODE_NAMES.get(cpu.mode or "") or cpu.model
    topology = None
    if cpu.sockets and cpu.cores and cpu.threads:
        topology = CpuTopology(sockets=cpu.sockets, cores=cpu.cores, threads=cpu.threads)
    return CpuInfo(model=model, topology=topology, nested=bool(cpu.required & _NESTED_FEATURES))


def _topology(domain: Domain) -> CpuTopology | None:
    cpu = cpu_info(domain)
    return cpu.topology if cpu else None


def _next_start(now: Domain, later: Domain, vcpus: int, memory_mib: int) -> NextStart | None:
    """What the persistent definition changes at the next start (None: nothing)."""
    later_vcpus = later.vcpu.current or later.vcpu.count
    later_memory = (
        later.current_memory.mib
        if later.node.find("currentMemory") is not None
        else later.memory.mib
    )
    later_topology = _topology(later)
    changes = NextStart(
        vcpus=later_vcpus if later_vcpus != vcpus else None,
        max_vcpus=later.vcpu.count if later.vcpu.count != now.vcpu.count else None,
        memory_mib=later_memory if later_memory != memory_mib else None,
        max_memory_mib=later.memory.mib if later.memory.mib != now.memory.mib else None,
        topology=later_topology if later_topology != _topology(now) else None,
    )
    return changes if changes.model_dump(exclude_none=True) else None


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
    inactive_xml = ""
    if active and dom.isPersistent():
        inactive_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    elif not active:
        inactive_xml = xml
    next_boot = Domain.from_xml(inactive_xml) if active and inactive_xml else None
    memory_mib = int(memory_kib) // 1024
    return DomainRecord(
        uuid=uuid,
        name=dom.name(),
        state=state,
        vcpus=int(vcpus),
        memory_mib=memory_mib,
        cpu_time_s=cpu_time_ns / 1e9 if active else None,
        uptime_s=time.monotonic() - start if start is not None else None,
        description=domain.description,
        accelerator=domain.accelerator,
        disks=_disks(dom, domain, next_boot),
        nics=_nics(domain, next_boot),
        corral_managed=domain.corral_managed,
        xml=xml,
        max_vcpus=domain.vcpu.count,
        max_memory_mib=domain.memory.mib,
        arch=domain.os.arch,
        machine=domain.os.machine,
        cpu=cpu_info(domain),
        next_start=_next_start(domain, next_boot, int(vcpus), memory_mib) if next_boot else None,
        inactive_xml=inactive_xml,
    )


def still(
    dom: libvirt.virDomain, known: DomainRecord, started_at: dict[str, float]
) -> DomainRecord | None:
    """``known`` brought up to date from ``dom``'s cheap counters (no XML read, no parse), or
    None when its name, state, vCPUs or memory differ and the whole record must be read again.
    Definition changes come with libvirt's ``defined`` event, which re-reads the domain."""
    state_code, _max_kib, memory_kib, vcpus, cpu_time_ns = dom.info()
    state = _STATES.get(state_code, VmState.UNKNOWN)
    memory_mib = int(memory_kib) // 1024
    if (state, int(vcpus), memory_mib) != (known.state, known.vcpus, known.memory_mib):
        return None
    if dom.name() != known.name:
        return None
    if known.cpu_time_s is None:
        return known  # not running: no counters move
    start = started_at.get(known.uuid)
    return dataclasses.replace(
        known,
        cpu_time_s=cpu_time_ns / 1e9,
        uptime_s=time.monotonic() - start if start is not None else None,
    )


def disk_users(conn: libvirt.virConnect) -> dict[str, set[str]]:
    """File or device path -> names of the domains whose disks or CD-ROM drives hold it, or
    that boot it as kernel or initrd, in their live or their persistent definition (the next
    boot counts too)."""
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
            domain = Domain.from_xml(xml)
            for disk in domain.devices.disks:
                if disk.path:
                    users.setdefault(disk.path, set()).add(name)
            for boot_file in (domain.os.kernel, domain.os.initrd):
                if boot_file:
                    users.setdefault(boot_file, set()).add(name)
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
        host_uuid=(caps.findtext("host/uuid") or "").strip() or _simulated_uuid(conn),
        arch=arch,
        cpus=int(cpus),
        memory_mib=memory_mib,
        free_memory_mib=free_memory_mib,
        accelerators=accelerators,
        libvirt_version=_version(conn.getLibVersion()),
        qemu_version=qemu_version,
    )


def _simulated_uuid(conn: libvirt.virConnect) -> str | None:
    """libvirt's test driver reports no host UUID: a simulated host's node description
    (``test:///PATH.xml``, read by libvirt in this process) carries one in ``<uuid>``."""
    uri = conn.getURI()
    if not (uri.startswith("test:///") and uri.endswith(".xml")):
        return None
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        node = etree.parse(uri.removeprefix("test://"), parser).getroot()
    except (OSError, etree.XMLSyntaxError):
        return None
    return (node.findtext("uuid") or "").strip() or None
