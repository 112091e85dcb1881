"""The volumes of Corral's storage pool on each host, as an administrator sees them: VM disks,
linked-clone overlays, library images, and what is left over (a disk whose VM was deleted with
its disks kept, a copy an interrupted migration left behind)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class VolumeInfo(BaseModel):
    """One volume of one host's pool (serial logs are not listed: they go with their VM)."""

    name: str
    host: str = Field(description="the host whose pool holds it (local), or that listed it")
    domain: str = Field(default="local", description="the storage domain holding it")
    path: str = Field(description="the volume's file, as the host sees it")
    format: str = Field(description="qcow2 or raw (libvirt's name for what it probed)")
    capacity_bytes: int = Field(description="the size a guest sees")
    allocation_bytes: int | None = Field(
        default=None, description="what the volume takes on the host's disk"
    )
    used_by: list[str] = Field(
        default_factory=list,
        description="VMs (any domain defined on the host) whose disks, CD-ROM drives or boot "
        "files are this volume or stand on it (linked clones), now or at their next boot; "
        "empty: unused. A volume in use cannot be deleted",
    )
    image: str | None = Field(
        default=None, description="the library image this volume holds (`corral image …`)"
    )
    backs: list[str] = Field(
        default_factory=list, description="volumes standing on this one (linked clones)"
    )
