"""Live migration: what is asked (``MigrationRequest``), how it goes (``MigrationStats``) and
what is kept in the task (``MigrationInfo``, the persisted steps of the state machine)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from corral.model.common import Name

#: The transport Corral uses when the request names none: QEMU's native TLS.
DEFAULT_TRANSPORT = "tls"
DEFAULT_MAX_DOWNTIME_MS = 300

#: Transport names: what plugins register under ``corral.migration_transports``.
TransportName = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$", min_length=1, max_length=32)
]


class StorageMode(StrEnum):
    """``auto`` (the default): copy only the disks the destination cannot reach — a disk on a
    storage domain the destination reaches, or at a path it sees too, stays where it is;
    ``shared``: every disk is at the same path on the destination (NFS, Ceph, a SAN…);
    ``copy``: libvirt copies the disks to the destination's pool during the migration (over
    the same transport, encrypted with TLS) — all but those on a storage domain the
    destination reaches, which are never copied onto themselves."""

    AUTO = "auto"
    SHARED = "shared"
    COPY = "copy"


class MigrationRequest(BaseModel):
    """``POST /vms/{name}/migrate``. Defaults are Corral's tuning (see README, "Live
    migration"): TLS, 300 ms max downtime, auto-converge (tuned), no bandwidth cap."""

    model_config = ConfigDict(extra="forbid")

    to: Name = Field(description="the destination host")
    transport: TransportName = Field(
        default=DEFAULT_TRANSPORT,
        description="tls (default, QEMU native TLS), ssh (tunnelled over qemu+ssh), insecure "
        "(plain TCP: only when an admin allowed it for the cluster), or a plugin's name",
    )
    max_downtime_ms: int = Field(
        default=DEFAULT_MAX_DOWNTIME_MS,
        ge=1,
        le=60_000,
        description="longest pause of the guest when it switches hosts",
    )
    bandwidth_mib_s: int | None = Field(
        default=None, ge=1, le=1_000_000, description="cap on the migration stream; none: no cap"
    )
    parallel_connections: int | None = Field(
        default=None,
        ge=1,
        le=32,
        description="multifd: send memory over this many connections (1 or none: one stream; "
        "none lets a transport choose)",
    )
    auto_converge: bool = Field(
        default=True,
        description="slow the guest's vCPUs down when it dirties memory faster than the stream "
        "can send it",
    )
    xbzrle: bool = Field(
        default=False,
        description="delta-compress pages sent again (XBZRLE; for guests that rewrite small "
        "parts of pages). One stream only: QEMU cannot combine it with parallel connections",
    )
    postcopy: bool = Field(
        default=False,
        description="switch to post-copy when pre-copy does not converge (the guest then runs "
        "on the destination while its memory follows; a network failure after the switch "
        "loses the VM, so this is opt-in)",
    )
    storage: StorageMode = StorageMode.AUTO


class TransportInfo(BaseModel):
    name: str
    description: str
    encrypted: bool
    allowed: bool = Field(description="whether a migration may ask for it now")
    usable: bool = Field(
        default=True,
        description="false when its checks or its prerequisites on the hosts (an SSH key, a "
        "known host key…) fail between the hosts checked: the pair asked for, else every pair "
        "of connected enrolled hosts",
    )
    reason: str | None = Field(
        default=None,
        description="why it is not usable (each failing host pair, with the cause and what to "
        "do); for a usable one, the host pairs whose prerequisites could not be checked",
    )


class MigrationStats(BaseModel):
    """One reading of libvirt's job statistics (``virDomainGetJobStats``)."""

    time_elapsed_ms: int | None = None
    data_total: int | None = Field(default=None, description="bytes to send in all")
    data_processed: int | None = Field(default=None, description="bytes sent so far")
    data_remaining: int | None = Field(default=None, description="bytes still to send")
    memory_bps: int | None = Field(default=None, description="memory throughput, bytes/s")
    dirty_rate_bps: int | None = Field(
        default=None, description="how fast the guest dirties memory, bytes/s"
    )
    iteration: int | None = Field(default=None, description="pre-copy pass over memory")
    downtime_ms: int | None = Field(
        default=None, description="expected (while running) or measured (completed) downtime"
    )
    disk_total: int | None = None
    disk_processed: int | None = None
    disk_remaining: int | None = None
    postcopy_requests: int | None = None


class MigrationStep(BaseModel):
    """One transition of the migration state machine, as persisted."""

    phase: str
    at: datetime
    note: str = ""


class MigrationInfo(BaseModel):
    """A migration as kept in its task's ``result["migration"]`` (written at every step, so a
    manager restart knows where it was)."""

    vm: str
    uuid: str
    source: str
    destination: str
    transport: str
    encrypted: bool
    request: MigrationRequest
    phase: str
    steps: list[MigrationStep] = Field(default_factory=list)
    stats: MigrationStats | None = Field(
        default=None, description="the latest job statistics (source, while it runs)"
    )
    completed: MigrationStats | None = Field(
        default=None, description="the destination's statistics of the finished job"
    )
    error: str | None = None
    destination_volumes: list[str] = Field(
        default_factory=list,
        description="storage copy: the disks this migration makes on the destination (none "
        "of them existed before it); deleted there again if it fails or is cancelled",
    )
    destination_log_made: bool = Field(
        default=False,
        description="the destination had no serial log of the VM: the one its QEMU begins "
        "there is deleted again if the migration fails or is cancelled",
    )
    destination_volumes_removed: list[str] = Field(
        default_factory=list,
        description="those of them deleted from the destination after a failure or cancel",
    )
