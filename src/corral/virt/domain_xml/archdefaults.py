"""What each guest architecture gets by default: machine type, buses, firmware, console, screen.

Pure data (in the manner of virt-manager's per-architecture ``set_defaults``), read by the XML
builder and by the checks done before a VM is built or changed:

================  ==================  ===========================  ===============  ==========
architecture      machine             devices                      console          screen
================  ==================  ===========================  ===============  ==========
x86_64, i686      libvirt's (pc)      PCI (q35: PCIe root ports)   ttyS0 (16550)    VNC + video
aarch64           virt, UEFI for      PCIe root ports              ttyAMA0 (pl011)  VNC +
                  disk/CD-ROM boot                                                  virtio-gpu
s390x             s390-ccw-virtio     virtio-ccw (no PCI)          ttysclp0 (SCLP)  none
riscv64           virt                PCIe root ports              ttyS0            none
ppc64, ppc64le    pseries             PCI                          hvc0 (spapr)     VGA
others            libvirt's           what libvirt picks           (board's)        none
================  ==================  ===========================  ===============  ==========
"""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.model.vm import Accelerator, DiskBus

#: How many PCIe root ports a VM on a PCIe machine (q35, virt) has in all: libvirt puts the
#: VM's devices on them and the rest stay free for hot-plug (virt-manager adds 14).
PCIE_ROOT_PORTS = 12

_ALL_BUSES = frozenset(DiskBus)
_PCI_NICS = frozenset({"virtio", "e1000", "rtl8139"})


@dataclass(frozen=True)
class ArchProfile:
    """Defaults for one guest architecture."""

    #: Debian package with the emulator (named when a host lacks it).
    package: str
    #: Machine type when a VM names none; None: libvirt's default for the architecture.
    machine: str | None = None
    #: Machine types (prefixes) whose devices sit on PCIe root ports.
    pcie_machines: tuple[str, ...] = ()
    acpi: bool = False
    apic: bool = False
    #: ``<serial><target type=… ><model name=…/>``; None: libvirt's default for the board.
    serial_target: str | None = None
    serial_model: str | None = None
    #: The serial console's device inside a Linux guest (what ``console=`` names).
    console: str | None = None
    #: A VNC screen (and a video card), and USB input where the board has no PS/2.
    graphics: bool = False
    video: str | None = None
    usb_input: bool = False
    #: UEFI firmware when booting from a disk or CD-ROM (direct kernel boot needs none).
    uefi: bool = False
    #: Debian package with that firmware.
    firmware_package: str | None = None
    #: CPU when a VM names none: under TCG (None: QEMU's default) and under KVM.
    tcg_cpu: str | None = None
    kvm_cpu: str = "host-model"
    #: GICv3 under TCG (GICv2, QEMU's default, stops at 8 vCPUs).
    tcg_gic3: bool = False
    disk_buses: frozenset[DiskBus] = _ALL_BUSES
    cdrom_bus: DiskBus = DiskBus.SCSI
    nic_models: frozenset[str] = _PCI_NICS
    #: vCPUs can be plugged into a running guest.
    vcpu_hotplug: bool = False
    #: Threads per core QEMU allows (None: no limit of its own).
    max_threads: int | None = None
    #: CPU feature that lets the guest run VMs, per accelerator.
    nested_features: dict[Accelerator, tuple[str, ...]] = field(default_factory=dict)

    def is_pcie(self, machine: str | None) -> bool:
        return machine is not None and any(machine.startswith(p) for p in self.pcie_machines)


_X86 = ArchProfile(
    package="qemu-system-x86",
    pcie_machines=("q35", "pc-q35"),
    acpi=True,
    apic=True,
    console="ttyS0",
    graphics=True,
    # q35 has no IDE; SATA works on pc (libvirt adds an AHCI controller) and q35.
    cdrom_bus=DiskBus.SATA,
    vcpu_hotplug=True,
    # KVM: the host CPU's (Intel vmx, AMD svm). TCG emulates AMD's SVM only.
    nested_features={Accelerator.KVM: ("vmx", "svm"), Accelerator.TCG: ("svm",)},
)

PROFILES: dict[str, ArchProfile] = {
    "x86_64": _X86,
    "i686": _X86,
    "aarch64": ArchProfile(
        package="qemu-system-arm",
        machine="virt",
        pcie_machines=("virt",),
        serial_target="system-serial",
        serial_model="pl011",
        console="ttyAMA0",
        graphics=True,
        video="virtio",
        usb_input=True,
        uefi=True,
        firmware_package="qemu-efi-aarch64",
        # QEMU's default for virt is the 32-bit cortex-a15; max is slow under TCG (pointer
        # authentication); host-model does not exist on ARM.
        tcg_cpu="cortex-a57",
        kvm_cpu="host-passthrough",
        tcg_gic3=True,
        disk_buses=frozenset({DiskBus.VIRTIO, DiskBus.SCSI, DiskBus.SATA}),
    ),
    "s390x": ArchProfile(
        package="qemu-system-misc",
        machine="s390-ccw-virtio",
        serial_target="sclp-serial",
        serial_model="sclpconsole",
        console="ttysclp0",
        disk_buses=frozenset({DiskBus.VIRTIO, DiskBus.SCSI}),
        nic_models=frozenset({"virtio"}),
        vcpu_hotplug=True,
        max_threads=1,  # "S390 does not support more than 1 threads" (QEMU 7.2)
        nested_features={Accelerator.KVM: ("sie",)},
    ),
    "riscv64": ArchProfile(
        package="qemu-system-misc",
        machine="virt",
        pcie_machines=("virt",),
        console="ttyS0",
        disk_buses=frozenset({DiskBus.VIRTIO, DiskBus.SCSI, DiskBus.SATA}),
    ),
    "ppc64": ArchProfile(
        package="qemu-system-ppc",
        machine="pseries",
        serial_target="spapr-vio-serial",
        console="hvc0",
        graphics=True,
        video="vga",
        usb_input=True,
        disk_buses=frozenset({DiskBus.VIRTIO, DiskBus.SCSI}),
        vcpu_hotplug=True,
    ),
}
PROFILES["ppc64le"] = PROFILES["ppc64"]

#: Debian packages with the emulators of the other architectures.
_PACKAGES = {
    "armv6l": "qemu-system-arm",
    "armv7l": "qemu-system-arm",
    "armv7b": "qemu-system-arm",
    "ppc": "qemu-system-ppc",
    "ppcle": "qemu-system-ppc",
    "ppcemb": "qemu-system-ppc",
    "mips": "qemu-system-mips",
    "mipsel": "qemu-system-mips",
    "mips64": "qemu-system-mips",
    "mips64el": "qemu-system-mips",
    "sparc": "qemu-system-sparc",
    "sparc64": "qemu-system-sparc",
}


def profile(arch: str) -> ArchProfile:
    """The defaults for ``arch`` (an architecture without its own gets libvirt's choices)."""
    known = PROFILES.get(arch)
    if known is not None:
        return known
    return ArchProfile(package=_PACKAGES.get(arch, "qemu-system-misc"))


def nested_feature(arch: str, accelerator: Accelerator, host_vendor: str) -> str | None:
    """The CPU feature that gives ``arch`` guests nested virtualization under ``accelerator``
    (None: none can): under KVM on x86 the host CPU's own (Intel vmx, AMD svm)."""
    features = profile(arch).nested_features.get(accelerator, ())
    if len(features) > 1:
        by_vendor = {"Intel": "vmx", "AMD": "svm", "Hygon": "svm"}.get(host_vendor)
        return by_vendor if by_vendor in features else None
    return features[0] if features else None
