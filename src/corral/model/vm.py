"""What a VM is asked to be (``VmSpec``) and what it is (``VmInfo``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from corral.model.arch import Arch, CpuInfo, CpuSpec, CpuTopology, MachineType, check_sizing
from corral.model.common import (
    ABSOLUTE_PATH_PATTERN,
    NAME_PATTERN,
    AbsolutePath,
    Description,
    Name,
    XmlText,
)

#: A CD-ROM, kernel or initrd source: the name of an image in the library, or (admins, under
#: ``host_path_roots``) an absolute path on the host.
CDROM_PATTERN = f"({ABSOLUTE_PATH_PATTERN})|({NAME_PATTERN})"


#: Names a new VM cannot take: paths under /api/v1/vms that are not a VM.
RESERVED_VM_NAMES = frozenset({"summary"})


def _not_reserved(name: str) -> str:
    if name in RESERVED_VM_NAMES:
        raise ValueError(
            f"{name!r} is reserved (/api/v1/vms/{name} is the VMs' counts): choose another VM name"
        )
    return name


#: A new VM's name: a :data:`Name` that is not reserved.
VmName = Annotated[
    Name,
    AfterValidator(_not_reserved),
    Field(json_schema_extra={"not": {"enum": sorted(RESERVED_VM_NAMES)}}),
]


class Accelerator(StrEnum):
    """How QEMU runs guest code: hardware KVM or the TCG emulator."""

    KVM = "kvm"
    TCG = "tcg"


class VmState(StrEnum):
    """Runtime state as libvirt reports it, plus ``missing`` for a domain that vanished."""

    RUNNING = "running"
    PAUSED = "paused"
    SHUTOFF = "shutoff"
    SHUTTING_DOWN = "shutting_down"
    CRASHED = "crashed"
    SUSPENDED = "pmsuspended"
    BLOCKED = "blocked"
    UNKNOWN = "unknown"
    MISSING = "missing"


#: The guest executes there (a paused destination of a migration in flight does not).
EXECUTING = frozenset({VmState.RUNNING, VmState.BLOCKED, VmState.SHUTTING_DOWN})


class DiskBus(StrEnum):
    VIRTIO = "virtio"
    SATA = "sata"
    SCSI = "scsi"
    IDE = "ide"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: Sizes are numbers in the unit their field's name says, binary like everything in Corral.
MEMORY_MIB_DOC = "memory in MiB (2**20 bytes): 2048 is 2 GiB"
SIZE_GIB_DOC = "size in GiB (2**30 bytes), fractions allowed: 0.5 is 512 MiB"


def _present(field: str, json_type: str) -> dict[str, Any]:
    """JSON Schema for "``field`` is given and not null"."""
    return {"required": [field], "properties": {field: {"type": json_type}}}


class DiskSpec(_Strict):
    """One disk. Exactly one source: ``size_gib`` (blank), ``base_image`` (linked clone of a
    volume in Corral's pool), ``import_path`` (copy of an image file on the host) or
    ``volume`` (an existing volume of the disk's domain, used as is: an iSCSI LUN, say)."""

    # The document states the one-source rule too, so that clients and fuzzers see it.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                _present("size_gib", "number"),
                _present("base_image", "string"),
                _present("import_path", "string"),
                _present("volume", "string"),
            ]
        }
    )

    name: Name = "root"
    size_gib: float | None = Field(default=None, gt=0, le=65536, description=SIZE_GIB_DOC)
    base_image: Name | None = None
    import_path: AbsolutePath | None = None
    volume: Name | None = Field(
        default=None,
        description="an existing volume of the disk's domain, used as is (no copy): an iSCSI "
        "LUN (`lun-N`) or any volume no other VM uses (`corral volume list --domain D`)",
    )
    bus: DiskBus = DiskBus.VIRTIO
    domain: Name = Field(
        default="local",
        description="the storage domain the disk's volume is made in or taken from (`local`: "
        "the VM's host's own pool); a blank disk, a linked clone of a volume of that domain or "
        "one of its volumes as is. The VM goes only to a host that reaches every domain its "
        "disks use",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = (self.size_gib, self.base_image, self.import_path, self.volume)
        if len([s for s in given if s is not None]) != 1:
            raise ValueError(
                f"disk {self.name!r}: give exactly one of size_gib (blank disk), base_image "
                "(linked clone), import_path (copy an image file) or volume (an existing volume "
                "of its domain, used as is)"
            )
        return self


class NicSpec(_Strict):
    """One network interface: ``nat`` (Corral's NAT network, created on demand), ``user``
    (QEMU user-mode networking), a cluster network (``corral network create``: the libvirt
    network of that name on every host) or the name of an existing libvirt network."""

    network: Name = "nat"
    model: Literal["virtio", "e1000", "rtl8139"] = "virtio"
    # Unicast only (the first octet's lowest bit clear): libvirt refuses multicast addresses.
    mac: str | None = Field(default=None, pattern=r"^[0-9a-f][02468ace](:[0-9a-f]{2}){5}$")


class BootSpec(_Strict):
    """Where the VM boots from."""

    model_config = ConfigDict(
        json_schema_extra={
            "if": {"required": ["source"], "properties": {"source": {"const": "kernel"}}},
            "then": _present("kernel", "string"),
        }
    )

    source: Literal["disk", "cdrom", "kernel"] = "disk"
    kernel: str | None = Field(
        default=None,
        description="a kernel image of the host's library (its name), or (admins) the absolute "
        "path of a file under host_path_roots",
        min_length=1,
        max_length=4096,
        pattern=CDROM_PATTERN,
    )
    initrd: str | None = Field(
        default=None,
        description="an initrd: a kernel image of the library, or (admins) an absolute path",
        min_length=1,
        max_length=4096,
        pattern=CDROM_PATTERN,
    )
    cmdline: XmlText | None = None

    @model_validator(mode="after")
    def _kernel_needs_path(self) -> Self:
        if self.source == "kernel" and self.kernel is None:
            raise ValueError("boot source 'kernel' needs a kernel (image name or path)")
        return self


class VmSpec(_Strict):
    """A request to create a VM. Disk names must be unique within it, vcpus and memory_mib
    at most their maximums, and the CPU topology's product the vCPU count (rules JSON Schema
    cannot state; the other cross-field rules are in the document)."""

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    # Also true when boot or boot.source is left out: "disk" is the default.
                    "if": {"properties": {"boot": {"properties": {"source": {"const": "disk"}}}}},
                    "then": {"required": ["disks"], "properties": {"disks": {"minItems": 1}}},
                },
                {
                    "if": {
                        "required": ["boot"],
                        "properties": {
                            "boot": {
                                "required": ["source"],
                                "properties": {"source": {"const": "cdrom"}},
                            }
                        },
                    },
                    # An ISO, or an empty drive to insert one into later.
                    "then": {
                        "anyOf": [
                            _present("cdrom", "string"),
                            {
                                "required": ["cdrom_drive"],
                                "properties": {"cdrom_drive": {"const": True}},
                            },
                        ]
                    },
                },
            ]
        }
    )

    name: VmName
    arch: Arch | None = Field(
        default=None,
        description="guest architecture (x86_64, aarch64, s390x, or any other the host has an "
        "emulator for: `corral host show`); default: the host's own. Machine type, buses, "
        "firmware and console follow from it",
    )
    machine: MachineType | None = Field(
        default=None,
        description="QEMU machine type the host offers for the architecture (q35, pc, virt, "
        "s390-ccw-virtio…); default: pc on x86, virt on aarch64, s390-ccw-virtio on s390x",
    )
    vcpus: int = Field(default=1, ge=1, le=512)
    max_vcpus: int | None = Field(
        default=None,
        ge=1,
        le=512,
        description="vCPUs the VM can be given while it runs (CPU hot-plug); at least vcpus. "
        "Default: vcpus (vCPUs then change while the VM is shut off)",
    )
    memory_mib: int = Field(default=512, ge=16, le=4 * 1024 * 1024, description=MEMORY_MIB_DOC)
    max_memory_mib: int | None = Field(
        default=None,
        ge=16,
        le=4 * 1024 * 1024,
        description="memory the VM can be given while it runs (the balloon shrinks it and "
        "grows it back up to this); at least memory_mib. Default: memory_mib",
    )
    cpu: CpuSpec = CpuSpec()
    disks: list[DiskSpec] = Field(default_factory=list, max_length=16)
    cdrom: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        pattern=CDROM_PATTERN,
        description="an ISO image of the host's image library (its name), or (admins) the "
        "absolute path of an ISO file under host_path_roots",
    )
    cdrom_drive: bool = Field(
        default=False,
        description="give the VM a CD-ROM drive even without `cdrom` (empty), so media can be "
        "inserted while it runs; CD-ROM drives cannot be hot-plugged",
    )
    # Left out: one NIC on NAT, as virt-manager and Proxmox give a new VM; an explicit empty
    # list is the only way to ask for none, so "not given" and "none" stay different.
    nics: list[NicSpec] = Field(
        default_factory=lambda: [NicSpec()],
        max_length=8,
        description="network interfaces. Left out: one virtio NIC on `nat` (Corral's NAT "
        "network, user-mode networking where the host cannot have it); `[]`: no network card",
    )
    boot: BootSpec = BootSpec()
    description: Description = ""
    accelerator: Accelerator | None = None
    host: Name | None = None
    start: bool = Field(default=False, description="start the VM once it is created")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_sizing(
            self.vcpus, self.max_vcpus, self.memory_mib, self.max_memory_mib, self.cpu.topology
        )
        names = [d.name for d in self.disks]
        if len(names) != len(set(names)):
            raise ValueError("disk names must be unique within a VM")
        if self.boot.source == "cdrom" and self.cdrom is None and not self.cdrom_drive:
            raise ValueError(
                "boot source 'cdrom' needs a cdrom ISO (image name or path), or cdrom_drive "
                "true for an empty drive to insert one into later"
            )
        if self.boot.source == "disk" and not self.disks:
            raise ValueError(
                "boot source 'disk' needs at least one disk: add one to disks, or boot from "
                "'cdrom' (with a cdrom ISO, or cdrom_drive true for an empty drive) or 'kernel'"
            )
        return self


#: A device of a running VM whose change waits for the VM's next start.
Pending = Literal["attach", "detach"]
PENDING_DOC = (
    "set on a running VM's device that changes at its next start: `attach` (in the "
    "definition, not in the running guest yet), `detach` (in the running guest, gone at the "
    "next start)"
)


class DiskInfo(BaseModel):
    name: str
    target: str
    path: str
    bus: str
    capacity_bytes: int | None = None
    device: Literal["disk", "cdrom"] = "disk"
    pending: Pending | None = Field(default=None, description=PENDING_DOC)


class NicInfo(BaseModel):
    mac: str
    network: str = Field(description="libvirt network name, or 'user' for user-mode networking")
    model: str = ""
    pending: Pending | None = Field(default=None, description=PENDING_DOC)


class NextStart(BaseModel):
    """What a running VM's definition holds for its next start, where it differs from now."""

    vcpus: int | None = None
    max_vcpus: int | None = None
    memory_mib: int | None = None
    max_memory_mib: int | None = None
    topology: CpuTopology | None = Field(
        default=None, description="the CPU topology from the next start on, where it differs"
    )


class VmInfo(BaseModel):
    """A VM as Corral sees it: inventory from the database, runtime state from libvirt."""

    uuid: str
    name: str
    host: str
    state: VmState
    vcpus: int
    memory_mib: int
    max_vcpus: int | None = Field(default=None, description="vCPUs it can have while running")
    max_memory_mib: int | None = Field(
        default=None, description="memory it can have while running (the balloon's ceiling)"
    )
    arch: str | None = None
    machine: str | None = None
    cpu: CpuInfo | None = None
    next_start: NextStart | None = Field(
        default=None, description="a running VM's sizes from its next start on, where they differ"
    )
    uptime_s: float | None = None
    cpu_time_s: float | None = None
    description: str = ""
    accelerator: Accelerator | None = None
    adopted: bool = False
    disks: list[DiskInfo] = Field(default_factory=list)
    nics: list[NicInfo] = Field(default_factory=list)
    created_at: datetime | None = None
    ha_priority: int | None = Field(
        default=None, description="high availability: restart order (None: HA is off)"
    )


class SnapshotInfo(BaseModel):
    name: str
    description: str = ""
    created_at: datetime
    vm_state: str
    current: bool = False


class SnapshotRequest(_Strict):
    name: Name
    # libvirt keeps it in the snapshot's XML as it is (no metadata to fall back on).
    description: Annotated[XmlText, StringConstraints(max_length=1024)] = ""


class CloneRequest(_Strict):
    name: VmName
    description: Description | None = None


class ShutdownRequest(_Strict):
    timeout_s: float = Field(default=60, gt=0, le=3600)
    # Strict: the document says boolean, so 0, 1 or "yes" are refused rather than guessed at.
    force: bool = Field(default=False, strict=True)


class DeleteRequest(_Strict):
    delete_disks: bool = False
