"""Can this host run the VM as asked? Architecture, machine type, accelerator, vCPU limit,
CPU model, nesting, buses and firmware, checked against what the host's libvirt reports, before
anything is built or changed. Every refusal names what to change or what to install."""

from __future__ import annotations

from dataclasses import dataclass

from corral.errors import Conflict, InsufficientResources
from corral.model.arch import CPU_MODES, Arch, CpuTopology
from corral.model.vm import Accelerator, DiskBus, VmSpec
from corral.virt import LibvirtHost
from corral.virt._hostcaps import DomainCaps, GuestArch, default_machine, nesting_possible
from corral.virt.domain_xml.archdefaults import ArchProfile, profile

#: How many names a refusal lists before "…".
_LISTED = 12


@dataclass(frozen=True)
class Target:
    """Where a VM runs, resolved: architecture, machine type (None: libvirt's default),
    accelerator, the host's vCPU limit for them, and the domain capabilities (None where
    libvirt cannot say)."""

    arch: str
    machine: str | None
    accelerator: Accelerator
    vcpu_limit: int | None
    caps: DomainCaps | None

    @property
    def profile(self) -> ArchProfile:
        return profile(self.arch)


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (", …" if len(names) > _LISTED else "")


async def _guest(host: LibvirtHost, arch: str) -> GuestArch:
    guest = await host.guests.arch(arch)
    if guest is None:
        # Packages may have been installed since the catalog was read: look once more.
        host.guests.forget()
        guest = await host.guests.arch(arch)
    if guest is None:
        package = profile(arch).package
        offered = sorted((await host.guests.catalog()).guests)
        raise Conflict(
            f"host {host.name!r} cannot run {arch} guests: libvirt reports no emulator for "
            f"{arch} there. Install {package} on the host (apt-get install {package}), or pick "
            f"another host; it runs {_listing(offered) or 'no architecture at all'}"
        )
    return guest


def _machine(host: LibvirtHost, guest: GuestArch, wanted: str | None) -> str | None:
    if wanted is None:
        default = profile(guest.arch).machine
        return default if default and guest.machine(default) else None
    if guest.machine(wanted) is None:
        aliases = [m.name for m in guest.machines if m.canonical]
        others = [m.name for m in guest.machines if not m.canonical]
        raise Conflict(
            f"host {host.name!r} offers no machine type {wanted!r} for {guest.arch} guests: "
            f"choose one of {_listing(aliases + others)} (`corral host show {host.name}`)"
        )
    return wanted


async def target(
    host: LibvirtHost, arch: str | None, machine: str | None, accelerator: Accelerator | None
) -> Target:
    """Resolve and check architecture, machine type and accelerator."""
    caps = await host.capabilities()
    name = arch or caps.arch
    guest = await _guest(host, name)
    chosen = _machine(host, guest, machine)
    accel = host.accelerator_for(accelerator, name)
    domcaps = await host.guests.domain_caps(name, accel, chosen)
    limit = domcaps.max_vcpus if domcaps is not None else None
    if limit is None:
        info = guest.machine(chosen or default_machine(guest) or "")
        limit = info.max_vcpus if info is not None else None
    if limit is None:
        limit = (await host.guests.catalog()).max_vcpus
    return Target(name, chosen, accel, limit, domcaps)


def check_vcpus(host: LibvirtHost, where: Target, vm: str, vcpus: int) -> None:
    limit = where.vcpu_limit
    if limit is not None and vcpus > limit:
        machine = where.machine or (where.caps.machine if where.caps else "default")
        raise InsufficientResources(
            f"host {host.name!r} runs {where.arch} guests of machine type {machine} with at most "
            f"{limit} vCPUs under {where.accelerator}; VM {vm!r} asks for {vcpus}: ask for at "
            f"most {limit}, or for a machine type with more (`corral host show {host.name}`)"
        )


def check_vcpu_hotplug(where: Target, vcpus: int, max_vcpus: int | None) -> None:
    if max_vcpus is not None and max_vcpus > vcpus and not where.profile.vcpu_hotplug:
        raise Conflict(
            f"{where.arch} guests cannot be given vCPUs while they run (QEMU has no CPU hot-plug "
            "for them): leave max_vcpus out, and change vCPUs while the VM is shut off"
        )


def check_topology(where: Target, topology: CpuTopology | None) -> None:
    most = where.profile.max_threads
    if topology is not None and most is not None and topology.threads > most:
        raise Conflict(
            f"{where.arch} guests have at most {most} thread(s) per core: make the topology's "
            f"threads {most} (e.g. {topology.sockets} sockets x "
            f"{topology.cores * topology.threads} cores x {most})"
        )


def _check_cpu(host: LibvirtHost, where: Target, model: str | None) -> None:
    caps = where.caps
    if model is None or caps is None:
        return
    offered = caps.cpu_modes if model in CPU_MODES else caps.cpu_models
    if model not in offered:
        kind = "CPU mode" if model in CPU_MODES else "CPU model"
        default = where.profile.tcg_cpu
        first = [default] if default in caps.cpu_models else []
        choices = caps.cpu_modes + first + [m for m in caps.cpu_models if m not in first]
        raise Conflict(
            f"{kind} {model!r} is not available for {where.arch} guests under "
            f"{where.accelerator} on host {host.name!r}: use one of {_listing(choices)} "
            f"(all of them: `corral host show {host.name}`)"
        )


async def check_nested(host: LibvirtHost, where: Target, vm: str) -> str:
    """The CPU feature that gives the VM nested virtualization; Conflict says why not."""
    catalog = await host.guests.catalog()
    feature, why = nesting_possible(where.arch, where.accelerator, catalog.host_cpu, where.caps)
    if feature is None:
        raise Conflict(
            f"VM {vm!r} cannot have nested virtualization ({where.arch}, {where.accelerator}) on "
            f"host {host.name!r}: {why}"
        )
    return feature


def check_disk_bus(where: Target, disk: str, bus: DiskBus) -> None:
    allowed = where.profile.disk_buses
    if bus not in allowed:
        names = ", ".join(sorted(b.value for b in allowed))
        raise Conflict(f"disk {disk!r}: {where.arch} guests have no {bus.value} bus; use {names}")


def check_nic_model(where: Target, model: str) -> None:
    allowed = where.profile.nic_models
    if model not in allowed:
        raise Conflict(
            f"{where.arch} guests cannot have {model} network interfaces (no PCI bus for them): "
            f"use {', '.join(sorted(allowed))}"
        )


def _check_firmware(host: LibvirtHost, where: Target, spec: VmSpec) -> None:
    arch = where.profile
    if not arch.uefi or spec.boot.source == "kernel" or where.caps is None:
        return
    if not where.caps.firmware:
        raise Conflict(
            f"host {host.name!r} has no UEFI firmware for {where.arch} guests, which boot from "
            f"a disk or CD-ROM through UEFI: install {arch.firmware_package} on the host "
            "(or boot a kernel directly: boot source 'kernel')"
        )


async def check_spec(host: LibvirtHost, spec: VmSpec) -> VmSpec:
    """Every hardware check of a new VM; the spec with arch, machine and accelerator decided."""
    where = await target(host, spec.arch, spec.machine, spec.accelerator)
    check_vcpus(host, where, spec.name, max(spec.vcpus, spec.max_vcpus or 0))
    check_vcpu_hotplug(where, spec.vcpus, spec.max_vcpus)
    check_topology(where, spec.cpu.topology)
    _check_cpu(host, where, spec.cpu.model)
    if spec.cpu.nested:
        await check_nested(host, where, spec.name)
    for disk in spec.disks:
        check_disk_bus(where, disk.name, disk.bus)
    for nic in spec.nics:
        check_nic_model(where, nic.model)
    _check_firmware(host, where, spec)
    arch = Arch(where.arch) if where.arch in set(Arch) else None
    return spec.model_copy(
        update={"arch": arch, "machine": where.machine, "accelerator": where.accelerator}
    )
