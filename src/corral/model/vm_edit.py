"""Changing a VM after its creation: sizes, description, disks and NICs.

A change reaches a VM in one of three ways, and the answer (``VmChange.applied``) says which:

- ``live``: the running guest has it now, and keeps it at later starts;
- ``next_start``: the VM runs and gets it when it is next started (shut down, then started; a
  reboot from inside the guest is not a new start);
- ``offline``: the VM is shut off and its definition has it.

``mode`` in a request asks for one: ``live`` is refused (409) where the change cannot be made
while the VM runs (above the maximum set at creation, a SATA/IDE disk, vCPUs on aarch64);
``next_start`` keeps a running guest as it is. Without ``mode`` a running VM gets the change
live where it can, else at its next start.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from corral.model.arch import CpuTopology, check_sizing
from corral.model.common import Description, Name
from corral.model.vm import (
    MEMORY_MIB_DOC,
    SIZE_GIB_DOC,
    DiskBus,
    NicSpec,
    VmInfo,
    _present,
)


class ChangeMode(StrEnum):
    """When a change should reach a running VM."""

    LIVE = "live"
    NEXT_START = "next_start"


class Applied(StrEnum):
    """When a change reached the VM (see the module docstring)."""

    LIVE = "live"
    NEXT_START = "next_start"
    OFFLINE = "offline"


_MODE_DOC = (
    "live: now, refused where the running VM cannot take it; next_start: when the VM is next "
    "started. Default: live where possible, else at the next start"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VmEdit(_Strict):
    """Fields to change; those left out stay. vcpus and memory_mib change live within the
    maximums set at creation; the maximums and the topology change only for the next start."""

    vcpus: int | None = Field(default=None, ge=1, le=512)
    max_vcpus: int | None = Field(default=None, ge=1, le=512)
    memory_mib: int | None = Field(
        default=None, ge=16, le=4 * 1024 * 1024, description=MEMORY_MIB_DOC
    )
    max_memory_mib: int | None = Field(default=None, ge=16, le=4 * 1024 * 1024)
    topology: CpuTopology | None = Field(
        default=None,
        description="a new CPU topology; its product must equal the (new) maximum vCPU count",
    )
    description: Description | None = None
    mode: ChangeMode | None = Field(default=None, description=_MODE_DOC)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_sizing(self.vcpus, self.max_vcpus, self.memory_mib, self.max_memory_mib)
        return self


class DiskAttachRequest(_Strict):
    """A disk to add: a new blank one (``size_gib``), a linked clone (``base_image``), or an
    existing volume of Corral's pool that no VM uses (``volume``, e.g. one detached before)."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                _present("size_gib", "number"),
                _present("base_image", "string"),
                _present("volume", "string"),
            ]
        }
    )

    name: Name = Field(description="the disk's name in the VM (unique within it)")
    size_gib: float | None = Field(default=None, gt=0, le=65536, description=SIZE_GIB_DOC)
    base_image: Name | None = None
    volume: Name | None = Field(
        default=None, description="a volume of Corral's pool on the VM's host (`vm show` paths)"
    )
    bus: DiskBus = DiskBus.VIRTIO
    mode: ChangeMode | None = Field(default=None, description=_MODE_DOC)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        sources = [s for s in (self.size_gib, self.base_image, self.volume) if s is not None]
        if len(sources) != 1:
            raise ValueError(
                f"disk {self.name!r}: give exactly one of size_gib (blank disk), base_image "
                "(linked clone) or volume (an existing volume of Corral's pool)"
            )
        return self


class NicAttachRequest(NicSpec):
    """A network interface to add."""

    mode: ChangeMode | None = Field(default=None, description=_MODE_DOC)


class VmChange(BaseModel):
    """The answer to a change: how it reached the VM, what changed, and the VM now."""

    applied: Applied = Field(
        description="live: the running guest has it; next_start: the VM gets it when next "
        "started; offline: the VM is shut off and its definition has it"
    )
    changes: list[str] = Field(description="what changed, in words")
    vm: VmInfo
