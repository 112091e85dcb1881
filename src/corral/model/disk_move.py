"""Moving one disk of a VM to another storage domain (``corral vm move-disk``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from corral.model.common import Name


class DiskMoveRequest(BaseModel):
    """Where a disk goes. A running VM's disk moves live (block copy: the guest keeps
    writing); a shut-off VM's volume is copied. The old volume is deleted once the VM uses
    the new one, unless ``keep_source``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    to: Name = Field(description="the target storage domain (e.g. local, or a shared one)")
    keep_source: bool = Field(
        default=False,
        description="keep the old volume after the move (default: delete it once the VM uses "
        "the new one)",
    )
    bandwidth_mib_s: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="cap on a live copy (MiB/s), to spare the storage; none: no cap (a shut-off "
        "VM's volume is copied uncapped)",
    )
