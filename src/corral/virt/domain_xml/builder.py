"""``VmSpec`` → :class:`Domain`: Corral's defaults, as a pure function (no libvirt, no I/O)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from corral.errors import InvalidRequest
from corral.model.arch import CPU_HOST_MODEL, CPU_HOST_PASSTHROUGH, CPU_MAX
from corral.model.vm import Accelerator, DiskBus, NicSpec, VmSpec
from corral.virt.domain_xml.archdefaults import PCIE_ROOT_PORTS, ArchProfile, profile
from corral.virt.domain_xml.cpu import Cpu, Vcpu
from corral.virt.domain_xml.devices import Devices
from corral.virt.domain_xml.disk import Controller, Disk, network_source
from corral.virt.domain_xml.domain import Domain, domain_type_for
from corral.virt.domain_xml.graphics import Graphics
from corral.virt.domain_xml.inputs import Input
from corral.virt.domain_xml.interface import Interface
from corral.virt.domain_xml.metadata import CREATED_BY
from corral.virt.domain_xml.osxml import Boot, Os
from corral.virt.domain_xml.serial import Console, Serial
from corral.virt.domain_xml.video import Video
from corral.virt.types import VolumeRef

_DEV_PREFIX = {DiskBus.VIRTIO: "vd", DiskBus.SATA: "sd", DiskBus.SCSI: "sd", DiskBus.IDE: "hd"}
#: The x86 CD-ROM bus: q35 has no IDE; SATA works on pc (libvirt adds an AHCI controller) and
#: q35. Neither can be hot-plugged: a CD-ROM drive exists from the VM's definition on, media
#: change at any time. Other architectures: ``ArchProfile.cdrom_bus`` (SCSI).
CDROM_BUS = DiskBus.SATA
#: How the image library names an ISO image's volume (``corral.services.images._names``).
LIBRARY_ISO_PREFIX = "_iso."
_CPU_MODES = {
    CPU_HOST_MODEL: Cpu.MODE_HOST_MODEL,
    CPU_HOST_PASSTHROUGH: Cpu.MODE_HOST_PASSTHROUGH,
    CPU_MAX: Cpu.MODE_MAXIMUM,
}
#: A named model to carry a nested-virtualization feature where the VM names none (x86, TCG).
_NESTED_BASE_MODEL = "qemu64"
#: NicSpec.network values with a meaning of their own; anything else names a libvirt network.
NIC_NAT = "nat"
NIC_USER = "user"


@dataclass(frozen=True)
class HostDefaults:
    """What the host decides for a new domain."""

    accelerator: Accelerator
    arch: str = "x86_64"
    machine: str | None = None  # None: libvirt's default machine type for ``arch``
    #: The CPU feature ``cpu.nested`` requires (vmx or svm on x86 by host CPU vendor, sie on
    #: s390x); None: the architecture's first for the accelerator.
    nested_feature: str | None = None
    nat_network: str | None = None  # the network behind NicSpec "nat"; None: user-mode instead
    serial_log_dir: str = "/var/lib/libvirt/corral/images"
    video: str = Video.MODEL_VIRTIO
    #: Graphics.LISTEN_SOCKET (local hosts) or Graphics.LISTEN_ADDRESS (qemu.conf's vnc_listen)
    vnc_listen: str = Graphics.LISTEN_SOCKET


def _target_names(buses: list[DiskBus]) -> list[str]:
    """vda, vdb… per prefix; SATA and SCSI share the ``sd`` letters as libvirt requires."""
    used: dict[str, int] = {}
    names = []
    for bus in buses:
        prefix = _DEV_PREFIX[bus]
        index = used.get(prefix, 0)
        used[prefix] = index + 1
        names.append(prefix + _letters(index))
    return names


def _letters(index: int) -> str:
    text = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        text = chr(ord("a") + rest) + text
    return text


def disk_element(volume: VolumeRef, target: str, bus: DiskBus) -> Disk:
    """A disk of ``volume`` at ``target`` on ``bus``: file-backed, or a network disk when the
    volume's path is an ``nfs://`` or ``iscsi://`` URL (volumes of nfs and iscsi domains)."""
    disk = Disk()
    disk.type = Disk.TYPE_FILE
    disk.device = Disk.DEVICE_DISK
    disk.driver_name = "qemu"
    disk.driver_type = volume.format
    network = network_source(volume.path)
    if network is not None:
        disk.set_network_source(network)  # libvirt takes network disks for safe to migrate
    else:
        disk.source_file = volume.path
        if volume.shared:
            disk.driver_cache = "none"
    disk.target_dev = target
    disk.target_bus = bus.value
    return disk


def cdrom_disk(
    path: str | None, target: str, bus: DiskBus = CDROM_BUS, *, relabel: bool = True
) -> Disk:
    """A read-only CD-ROM drive holding ``path`` (None: an empty drive, media inserted later;
    an ``nfs://`` URL: an ISO image of an nfs storage domain, read by QEMU's NFS client).
    ``relabel=False`` for a host file outside Corral's pool: libvirt must not change its owner
    or label (a 0600 root file stayed owned by QEMU's user after the VM stopped)."""
    disk = Disk()
    disk.type = Disk.TYPE_FILE
    disk.device = Disk.DEVICE_CDROM
    disk.driver_name = "qemu"
    disk.driver_type = "raw"
    network = network_source(path) if path is not None else None
    if network is not None:
        disk.set_network_source(network)
    else:
        disk.source_file = path
    if path is not None and network is None and not relabel:
        disk.source_seclabel_model = "dac"
        disk.source_seclabel_relabel = "no"
    disk.target_dev = target
    disk.target_bus = bus.value
    disk.readonly = True
    return disk


def free_target(bus: DiskBus, used: set[str]) -> str:
    """The first target name of ``bus``'s letters (``sda``, ``sdb``…) that ``used`` lacks."""
    prefix = _DEV_PREFIX[bus]
    index = 0
    while prefix + _letters(index) in used:
        index += 1
    return prefix + _letters(index)


def interface_element(nic: NicSpec, nat_network: str | None) -> Interface:
    """A NIC on ``nic.network`` (``nat``: ``nat_network``, user-mode networking without one)."""
    iface = Interface()
    network = nat_network if nic.network == NIC_NAT else nic.network
    if network is None or network == NIC_USER:
        iface.type = Interface.TYPE_USER
    else:
        iface.type = Interface.TYPE_NETWORK
        iface.source_network = network
    iface.mac = nic.mac
    iface.model = nic.model
    return iface


def _controller(kind: str, model: str, index: str | None = None) -> Controller:
    controller = Controller()
    controller.type, controller.index, controller.model = kind, index, model
    return controller


def _add_devices(domain: Domain, spec: VmSpec, disks: list[VolumeRef], host: HostDefaults) -> None:
    arch = profile(host.arch)
    devices = domain.devices
    corral = domain.metadata.corral(create=True)
    assert corral is not None
    drive = spec.cdrom is not None or spec.cdrom_drive
    buses = [d.bus for d in spec.disks] + ([arch.cdrom_bus] if drive else [])
    targets = _target_names(buses)
    for disk_spec, volume, target in zip(spec.disks, disks, targets, strict=False):
        devices.add_child(disk_element(volume, target, disk_spec.bus))
        corral.add_disk(disk_spec.name, target)
    if drive:
        # The library's ISO images are volumes of the pool (the serial logs' directory) or of
        # a shared-dir storage domain (named _iso.NAME there); anything else is an admin's
        # host file.
        pool = host.serial_log_dir.rstrip("/") + "/"
        own = (
            spec.cdrom is None
            or spec.cdrom.startswith(pool)
            or posixpath.basename(spec.cdrom).startswith(LIBRARY_ISO_PREFIX)
        )
        devices.add_child(cdrom_disk(spec.cdrom, targets[-1], arch.cdrom_bus, relabel=own))
    if DiskBus.SCSI in buses:
        devices.add_child(_controller("scsi", "virtio-scsi", "0"))
    if arch.graphics and arch.usb_input:
        devices.add_child(_controller("usb", "qemu-xhci", "0"))
    if arch.is_pcie(host.machine):
        # Index 0 must be the root complex for libvirt to number the ports after it.
        devices.add_child(_controller("pci", "pcie-root", "0"))
        for index in range(1, PCIE_ROOT_PORTS + 1):
            devices.add_child(_controller("pci", "pcie-root-port", str(index)))
    for nic in spec.nics:
        devices.add_child(interface_element(nic, host.nat_network))
    _add_console(devices, spec.name, arch, host)
    if arch.graphics:
        _add_screen(devices, arch, host)


def _add_console(devices: Devices, name: str, arch: ArchProfile, host: HostDefaults) -> None:
    serial = devices.add_child(Serial())
    serial.type = Serial.TYPE_PTY
    serial.log_file = f"{host.serial_log_dir.rstrip('/')}/{name}.serial.log"
    serial.log_append = True
    serial.target_type = arch.serial_target
    serial.target_port = 0
    serial.target_model = arch.serial_model
    console = devices.add_child(Console())
    console.type, console.target_type, console.target_port = "pty", "serial", 0


def _add_screen(devices: Devices, arch: ArchProfile, host: HostDefaults) -> None:
    if arch.usb_input:
        for kind in ("keyboard", "tablet"):
            device = devices.add_child(Input())
            device.type, device.bus = kind, "usb"
    graphics = devices.add_child(Graphics())
    graphics.type, graphics.listen_type = Graphics.TYPE_VNC, host.vnc_listen
    if host.vnc_listen == Graphics.LISTEN_ADDRESS:
        graphics.autoport = "yes"
    video = devices.add_child(Video())
    video.model = arch.video or host.video


def build_domain(
    spec: VmSpec, disks: list[VolumeRef], host: HostDefaults, *, uuid: str | None = None
) -> Domain:
    """The domain for ``spec``; ``disks[i]`` is the volume behind ``spec.disks[i]``."""
    if len(disks) != len(spec.disks):
        raise InvalidRequest(
            f"VM {spec.name}: {len(spec.disks)} disks requested but {len(disks)} volumes given"
        )
    domain = Domain()
    domain.type = domain_type_for(host.accelerator)
    domain.name = spec.name
    domain.uuid = uuid
    domain.description = spec.description
    corral = domain.metadata.corral(create=True)
    assert corral is not None
    corral.created_by = CREATED_BY
    _set_sizes(domain, spec)
    arch = profile(host.arch)
    uefi = _set_os(domain, spec, host, arch)
    gic3 = arch.tcg_gic3 and host.accelerator is Accelerator.TCG
    if arch.acpi or uefi or arch.apic or gic3:
        features = domain.features
        features.acpi = arch.acpi or uefi
        features.apic = arch.apic
        features.gic_version = "3" if gic3 else None
    _set_cpu(domain, spec, host, arch)
    domain.on_poweroff, domain.on_reboot, domain.on_crash = "destroy", "restart", "destroy"
    _add_devices(domain, spec, disks, host)
    return domain


def _set_sizes(domain: Domain, spec: VmSpec) -> None:
    """``<memory>`` is the ceiling (the balloon's), ``<currentMemory>`` what the guest has;
    ``<vcpu>`` counts the vCPUs that can exist, ``current`` those plugged in."""
    max_memory = spec.max_memory_mib or spec.memory_mib
    domain.memory.mib = max_memory
    if max_memory != spec.memory_mib:
        domain.current_memory.mib = spec.memory_mib
    vcpu: Vcpu = domain.vcpu
    max_vcpus = spec.max_vcpus or spec.vcpus
    vcpu.placement, vcpu.count = Vcpu.PLACEMENT_STATIC, max_vcpus
    if max_vcpus != spec.vcpus:
        vcpu.current = spec.vcpus


def _set_cpu(domain: Domain, spec: VmSpec, host: HostDefaults, arch: ArchProfile) -> None:
    wanted = spec.cpu.model
    if wanted is None:
        kvm = host.accelerator is Accelerator.KVM
        wanted = arch.kvm_cpu if kvm else arch.tcg_cpu
    nested = None
    if spec.cpu.nested:
        features = arch.nested_features.get(host.accelerator, ())
        nested = host.nested_feature or (features[0] if features else None)
        if nested is None:
            raise InvalidRequest(f"{host.arch} guests cannot have nested virtualization here")
        wanted = wanted or _NESTED_BASE_MODEL
    if wanted is None and spec.cpu.topology is None:
        return
    cpu: Cpu = domain.cpu
    if wanted in _CPU_MODES:
        cpu.mode = _CPU_MODES[wanted]
    elif wanted is not None:
        cpu.mode, cpu.match = Cpu.MODE_CUSTOM, "exact"
        cpu.model = wanted
        cpu.model_fallback = "forbid"
    topology = spec.cpu.topology
    if topology is not None:
        cpu.sockets, cpu.dies, cpu.cores, cpu.threads = (
            topology.sockets, 1, topology.cores, topology.threads
        )  # fmt: skip
    if nested is not None:
        cpu.require(nested)


def _set_os(domain: Domain, spec: VmSpec, host: HostDefaults, arch: ArchProfile) -> bool:
    """The ``<os>`` element; True when the VM boots through UEFI."""
    os: Os = domain.os
    os.os_type = "hvm"
    os.arch = host.arch
    os.machine = host.machine
    boot = spec.boot
    uefi = arch.uefi and boot.source != "kernel"
    if uefi:
        os.firmware = Os.FIRMWARE_EFI
        # The plain firmware: the secure-boot builds enrol keys that refuse unsigned loaders.
        os.disable_firmware_features("enrolled-keys", "secure-boot")
    if boot.source == "kernel":
        os.kernel, os.initrd, os.cmdline = boot.kernel, boot.initrd, boot.cmdline
    elif boot.source == "cdrom":
        os.boot_devices = [Boot.DEV_CDROM, Boot.DEV_HD]
    else:
        os.boot_devices = [Boot.DEV_HD]
    return uefi
