"""The image library: ISO and disk images kept in a host's storage pool, and CD-ROM media."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from corral.model.common import Name
from corral.model.task import TaskInfo


class ImageKind(StrEnum):
    """``iso``: a CD/DVD image (ISO 9660 or UDF), CD-ROM media. ``disk``: a qcow2 or raw disk
    image, the base of linked-clone disks (``base_image``). ``kernel``: a kernel or initrd file
    for direct kernel boot (``boot.kernel``, ``boot.initrd``), raw bytes."""

    ISO = "iso"
    DISK = "disk"
    KERNEL = "kernel"


class ImageInfo(BaseModel):
    """One image of the library: in one host's pool (domain ``local``), or in a shared storage
    domain, where it is one image for every host reaching the domain."""

    name: str
    host: str | None = Field(
        description="the host whose pool holds it (domain local); null for an image of a "
        "shared storage domain, which every host reaching the domain uses"
    )
    domain: str = Field(default="local", description="the storage domain holding it")
    kind: ImageKind
    format: str = Field(description="qcow2 or raw (ISO images are raw)")
    size_bytes: int = Field(description="what the image takes in the pool")
    capacity_bytes: int = Field(description="the size a guest sees")
    path: str = Field(
        description="the image's file, as the hosts see it, or its nfs:// URL (nfs domains)"
    )
    used_by: list[str] = Field(
        default_factory=list,
        description="VMs whose CD-ROM drive or disks (linked clones) use it, now or at their "
        "next boot; an image in use cannot be deleted",
    )


class ImageUploaded(BaseModel):
    """The answer to an upload: the new image and the finished task that received it."""

    image: ImageInfo
    task: TaskInfo


class CdromRequest(BaseModel):
    """Insert an ISO image of the VM's host into its CD-ROM drive, or eject the media."""

    # The document states the either-or rule too, so that clients and fuzzers see it.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["image"],
                    "properties": {"image": {"type": "string"}, "eject": {"const": False}},
                },
                {
                    "required": ["eject"],
                    "properties": {"eject": {"const": True}, "image": {"type": "null"}},
                },
            ]
        },
    )

    image: Name | None = Field(default=None, description="an ISO image of the VM's host")
    eject: StrictBool = False

    @model_validator(mode="after")
    def _one_action(self) -> Self:
        if (self.image is None) == (not self.eject):
            raise ValueError('give either "image": NAME (insert) or "eject": true')
        return self
