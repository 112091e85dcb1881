"""High availability: which VMs come back by themselves when their host dies, and where each
host stands in the HA monitor's eyes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from corral.model.power import not_bool

#: Restart order: higher first; equal priorities by name.
DEFAULT_PRIORITY = 50


#: Bounds before the validator, or the document shows them as 'ge'/'le' (no client reads).
Priority = Annotated[
    int,
    Field(ge=0, le=100, description="restart order: higher first (0-100)"),
    BeforeValidator(not_bool),
]


class HostHaState(StrEnum):
    """ok: answers; suspect: stopped answering, not yet fenced; fencing: being switched off
    (or waiting for proof it is off); fenced: proven off, its HA VMs restart elsewhere;
    recovering: restarting them now."""

    OK = "ok"
    SUSPECT = "suspect"
    FENCING = "fencing"
    FENCED = "fenced"
    RECOVERING = "recovering"


class VmHaRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool
    priority: Priority = DEFAULT_PRIORITY


class VmHaInfo(BaseModel):
    vm: str
    enabled: bool
    priority: int | None = Field(default=None, description="restart order (None: HA is off)")
    definition_saved_at: datetime | None = Field(
        default=None,
        description="when Corral last saved the definition it restarts the VM from elsewhere",
    )
    waiting: str | None = Field(
        default=None, description="why it could not be restarted yet (it is retried)"
    )


class HostHa(BaseModel):
    host: str
    state: HostHaState
    reason: str = ""
    since: datetime | None = None
    ha_vms: int = Field(default=0, description="HA VMs whose row is on this host")
    heartbeat: str | None = Field(
        default=None,
        description="its storage heartbeat as this instance sees it: 'moving' (the lease can "
        "prove it off once the beat stops), 'seen' (not yet seen moving since the host last "
        "came back), 'still' or none",
    )


class HaStatus(BaseModel):
    monitor: str = Field(description="the instance running the HA monitor, or 'none'")
    hosts: list[HostHa]
    waiting: list[VmHaInfo] = Field(
        default_factory=list, description="HA VMs whose host died and that fit nowhere yet"
    )
