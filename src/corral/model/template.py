"""Templates: a shut-off VM's disks frozen as read-only bases, and its definition, from which
new VMs are made as linked clones (an overlay per disk) or full copies."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from corral.cloudinit.model import CloudInitConfig
from corral.model.arch import Arch, MachineType
from corral.model.common import Description, Name
from corral.model.vm import NicSpec, VmName


class CloneKind(StrEnum):
    """linked: a qcow2 overlay per disk on the template's base (instant, shares its blocks);
    full: a copy of each base (takes as long as the data, independent of the template)."""

    LINKED = "linked"
    FULL = "full"


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    from_vm: Name = Field(
        description="a shut-off VM whose disks become the template's read-only bases (the "
        "VM keeps running on overlays of them)"
    )
    description: Description = ""


class TemplateImport(BaseModel):
    """A template of a disk image of a host's library (a cloud image, qcow2 or raw): the
    image is its base as it is (never copied or changed), with a definition made from these
    settings. The image cannot be deleted while the template exists."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    image: Name = Field(description="a disk image of the host's library (`corral image list`)")
    host: Name | None = Field(
        default=None,
        description="the host whose library holds the image (default: the first connected "
        "host that has it); the template's VMs are made there",
    )
    arch: Arch | None = Field(default=None, description="the guest's architecture (the host's)")
    machine: MachineType | None = None
    vcpus: int = Field(default=1, ge=1, le=512)
    memory_mib: int = Field(default=1024, ge=16, le=4 * 1024 * 1024)
    nics: list[NicSpec] = Field(
        default_factory=lambda: [NicSpec()],
        max_length=16,
        description="the VMs' network interfaces (default: one on Corral's NAT network)",
    )
    description: Description = ""


class TemplateDisk(BaseModel):
    target: str = Field(description="the disk's device in the guest (vda, sda…)")
    volume: str = Field(description="the read-only base volume in the host's pool")
    path: str
    capacity_bytes: int | None = None
    image: str | None = Field(
        default=None,
        description="the library's disk image this base is (imported templates): it stays "
        "when the template is deleted",
    )


class TemplateInfo(BaseModel):
    name: str
    description: str
    host: str = Field(description="the host whose storage holds the bases: its VMs are made there")
    source_vm: str = Field(
        description="the VM the template was made from (empty for an imported image)"
    )
    source_image: str | None = Field(
        default=None, description="the library's disk image it was imported from"
    )
    arch: str
    vcpus: int
    memory_mib: int
    disks: list[TemplateDisk]
    created_by: str
    created_at: datetime
    used_by: list[str] = Field(
        default_factory=list,
        description="VMs whose disks stand on the template's bases (it cannot be deleted "
        "while there are any)",
    )


class TemplateVmRequest(BaseModel):
    """A new VM from a template: its definition (architecture, vCPUs, memory, NICs, boot) is
    the template's, with a new name, UUID and MAC addresses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: VmName
    clone: CloneKind = CloneKind.LINKED
    description: Description | None = None
    start: bool = Field(default=False, strict=True, description="start the VM once it is made")
    cloud_init: CloudInitConfig | None = Field(
        default=None,
        description="configure the guest on its first boot with cloud-init (NoCloud): a seed "
        "ISO made from these settings is attached as a CD-ROM. The image must run cloud-init",
    )
