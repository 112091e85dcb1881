"""``VmSpec`` → :class:`Domain`: Corral's defaults, as a pure function (no libvirt, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

from corral.errors import InvalidRequest
from corral.model.vm import Accelerator, DiskBus, NicSpec, VmSpec
from corral.virt.domain_xml.cpu import Cpu, Vcpu
from corral.virt.domain_xml.disk import Controller, Disk
from corral.virt.domain_xml.domain import Domain, domain_type_for
from corral.virt.domain_xml.graphics import Graphics
from corral.virt.domain_xml.interface import Interface
from corral.virt.domain_xml.metadata import CREATED_BY
from corral.virt.domain_xml.osxml import Boot
from corral.virt.domain_xml.serial import Console, Serial
from corral.virt.domain_xml.video import Video
from corral.virt.types import VolumeRef

_DEV_PREFIX = {DiskBus.VIRTIO: "vd", DiskBus.SATA: "sd", DiskBus.SCSI: "sd", DiskBus.IDE: "hd"}
#: q35 has no IDE; SATA works on pc (libvirt adds an AHCI controller) and q35. Neither can be
#: hot-plugged: a CD-ROM drive exists from the VM's definition on, media change at any time.
CDROM_BUS = DiskBus.SATA
#: NicSpec.network values with a meaning of their own; anything else names a libvirt network.
NIC_NAT = "nat"
NIC_USER = "user"


@dataclass(frozen=True)
class HostDefaults:
    """What the host decides for a new domain."""

    accelerator: Accelerator
    arch: str = "x86_64"
    machine: str | None = None  # None: libvirt's default machine type for ``arch``
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


def _disk(volume: VolumeRef, target: str, bus: DiskBus) -> Disk:
    disk = Disk()
    disk.type = Disk.TYPE_FILE
    disk.device = Disk.DEVICE_DISK
    disk.driver_name = "qemu"
    disk.driver_type = volume.format
    disk.source_file = volume.path
    disk.target_dev = target
    disk.target_bus = bus.value
    return disk


def cdrom_disk(path: str | None, target: str) -> Disk:
    """A read-only CD-ROM drive holding ``path`` (None: an empty drive, media inserted later)."""
    disk = Disk()
    disk.type = Disk.TYPE_FILE
    disk.device = Disk.DEVICE_CDROM
    disk.driver_name = "qemu"
    disk.driver_type = "raw"
    disk.source_file = path
    disk.target_dev = target
    disk.target_bus = CDROM_BUS.value
    disk.readonly = True
    return disk


def free_target(bus: DiskBus, used: set[str]) -> str:
    """The first target name of ``bus``'s letters (``sda``, ``sdb``…) that ``used`` lacks."""
    prefix = _DEV_PREFIX[bus]
    index = 0
    while prefix + _letters(index) in used:
        index += 1
    return prefix + _letters(index)


def _interface(nic: NicSpec, nat_network: str | None) -> Interface:
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


def _add_devices(domain: Domain, spec: VmSpec, disks: list[VolumeRef], host: HostDefaults) -> None:
    devices = domain.devices
    corral = domain.metadata.corral(create=True)
    assert corral is not None
    drive = spec.cdrom is not None or spec.cdrom_drive
    buses = [d.bus for d in spec.disks] + ([CDROM_BUS] if drive else [])
    targets = _target_names(buses)
    for disk_spec, volume, target in zip(spec.disks, disks, targets, strict=False):
        devices.add_child(_disk(volume, target, disk_spec.bus))
        corral.add_disk(disk_spec.name, target)
    if drive:
        devices.add_child(cdrom_disk(spec.cdrom, targets[-1]))
    if DiskBus.SCSI in buses:
        controller = devices.add_child(Controller())
        controller.type, controller.index, controller.model = "scsi", "0", "virtio-scsi"
    for nic in spec.nics:
        devices.add_child(_interface(nic, host.nat_network))
    serial = devices.add_child(Serial())
    serial.type = Serial.TYPE_PTY
    serial.log_file = f"{host.serial_log_dir.rstrip('/')}/{spec.name}.serial.log"
    serial.log_append = True
    serial.target_port = 0
    console = devices.add_child(Console())
    console.type, console.target_type, console.target_port = "pty", "serial", 0
    graphics = devices.add_child(Graphics())
    graphics.type, graphics.listen_type = Graphics.TYPE_VNC, host.vnc_listen
    if host.vnc_listen == Graphics.LISTEN_ADDRESS:
        graphics.autoport = "yes"
    video = devices.add_child(Video())
    video.model = host.video


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
    domain.memory.mib = spec.memory_mib
    vcpu: Vcpu = domain.vcpu
    vcpu.placement, vcpu.count = Vcpu.PLACEMENT_STATIC, spec.vcpus
    _set_os(domain, spec, host)
    domain.features.acpi = True
    domain.features.apic = True
    if host.accelerator is Accelerator.KVM:
        cpu: Cpu = domain.cpu
        cpu.mode = Cpu.MODE_HOST_MODEL
    domain.on_poweroff, domain.on_reboot, domain.on_crash = "destroy", "restart", "destroy"
    _add_devices(domain, spec, disks, host)
    return domain


def _set_os(domain: Domain, spec: VmSpec, host: HostDefaults) -> None:
    os = domain.os
    os.os_type = "hvm"
    os.arch = host.arch
    os.machine = host.machine
    boot = spec.boot
    if boot.source == "kernel":
        os.kernel, os.initrd, os.cmdline = boot.kernel, boot.initrd, boot.cmdline
    elif boot.source == "cdrom":
        os.boot_devices = [Boot.DEV_CDROM, Boot.DEV_HD]
    else:
        os.boot_devices = [Boot.DEV_HD]
