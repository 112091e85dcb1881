"""What a VM is asked to be (``VmSpec``) and what it is (``VmInfo``)."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from corral.model.common import NAME_PATTERN, Description, Name

_IMAGE_NAME = re.compile(NAME_PATTERN)


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


class DiskBus(StrEnum):
    VIRTIO = "virtio"
    SATA = "sata"
    SCSI = "scsi"
    IDE = "ide"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DiskSpec(_Strict):
    """One disk. Exactly one source: ``size_gib`` (blank), ``base_image`` (linked clone of a
    volume in Corral's pool) or ``import_path`` (copy of an image file on the host)."""

    name: Name = "root"
    size_gib: float | None = Field(default=None, gt=0, le=65536)
    base_image: Name | None = None
    import_path: str | None = Field(default=None, min_length=1, max_length=4096)
    bus: DiskBus = DiskBus.VIRTIO

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        sources = [s for s in (self.size_gib, self.base_image, self.import_path) if s is not None]
        if len(sources) != 1:
            raise ValueError(
                f"disk {self.name!r}: give exactly one of size_gib (blank disk), base_image "
                "(linked clone) or import_path (copy an image file)"
            )
        if self.import_path is not None and not self.import_path.startswith("/"):
            raise ValueError(f"disk {self.name!r}: import_path must be an absolute path")
        return self


class NicSpec(_Strict):
    """One network interface: ``nat`` (Corral's NAT network, created on demand), ``user``
    (QEMU user-mode networking) or the name of an existing libvirt network."""

    network: Name = "nat"
    model: Literal["virtio", "e1000", "rtl8139"] = "virtio"
    mac: str | None = Field(default=None, pattern=r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


class BootSpec(_Strict):
    """Where the VM boots from."""

    source: Literal["disk", "cdrom", "kernel"] = "disk"
    kernel: str | None = Field(default=None, max_length=4096)
    initrd: str | None = Field(default=None, max_length=4096)
    cmdline: str | None = Field(default=None, max_length=4096)

    @model_validator(mode="after")
    def _kernel_needs_path(self) -> Self:
        if self.source == "kernel" and not self.kernel:
            raise ValueError("boot source 'kernel' needs a kernel path")
        for label, path in (("kernel", self.kernel), ("initrd", self.initrd)):
            if path is not None and not path.startswith("/"):
                raise ValueError(f"boot {label} must be an absolute path")
        return self


class VmSpec(_Strict):
    """A request to create a VM."""

    name: Name
    vcpus: int = Field(default=1, ge=1, le=512)
    memory_mib: int = Field(default=512, ge=16, le=4 * 1024 * 1024)
    disks: list[DiskSpec] = Field(default_factory=list, max_length=16)
    cdrom: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="an ISO image of the host's image library (its name), or the absolute path "
        "of an ISO file on the host",
    )
    cdrom_drive: bool = Field(
        default=False,
        description="give the VM a CD-ROM drive even without `cdrom` (empty), so media can be "
        "inserted while it runs; CD-ROM drives cannot be hot-plugged",
    )
    nics: list[NicSpec] = Field(default_factory=list, max_length=8)
    boot: BootSpec = BootSpec()
    description: Description = ""
    accelerator: Accelerator | None = None
    host: Name | None = None
    start: bool = Field(default=False, description="start the VM once it is created")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [d.name for d in self.disks]
        if len(names) != len(set(names)):
            raise ValueError("disk names must be unique within a VM")
        if (
            self.cdrom is not None
            and not self.cdrom.startswith("/")
            and not (_IMAGE_NAME.fullmatch(self.cdrom) and ".." not in self.cdrom)
        ):
            raise ValueError(
                "cdrom must be the name of an ISO image in the library or an absolute path to "
                "an ISO file"
            )
        if self.boot.source == "cdrom" and self.cdrom is None:
            raise ValueError("boot source 'cdrom' needs a cdrom ISO (image name or path)")
        if self.boot.source == "disk" and not self.disks:
            raise ValueError("boot source 'disk' needs at least one disk")
        return self


class DiskInfo(BaseModel):
    name: str
    target: str
    path: str
    bus: str
    capacity_bytes: int | None = None
    device: Literal["disk", "cdrom"] = "disk"


class NicInfo(BaseModel):
    mac: str
    network: str = Field(description="libvirt network name, or 'user' for user-mode networking")
    model: str = ""


class VmInfo(BaseModel):
    """A VM as Corral sees it: inventory from the database, runtime state from libvirt."""

    uuid: str
    name: str
    host: str
    state: VmState
    vcpus: int
    memory_mib: int
    uptime_s: float | None = None
    cpu_time_s: float | None = None
    description: str = ""
    accelerator: Accelerator | None = None
    adopted: bool = False
    disks: list[DiskInfo] = Field(default_factory=list)
    nics: list[NicInfo] = Field(default_factory=list)
    created_at: datetime | None = None


class SnapshotInfo(BaseModel):
    name: str
    description: str = ""
    created_at: datetime
    vm_state: str
    current: bool = False


class SnapshotRequest(_Strict):
    name: Name
    description: Description = ""


class CloneRequest(_Strict):
    name: Name
    description: Description | None = None


class ShutdownRequest(_Strict):
    timeout_s: float = Field(default=60, gt=0, le=3600)
    force: bool = False


class DeleteRequest(_Strict):
    delete_disks: bool = False
