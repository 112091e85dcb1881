"""Typed values ``corral.virt`` hands to the services layer (pure data, no libvirt)."""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.model.arch import CpuInfo
from corral.model.vm import Accelerator, DiskInfo, NextStart, NicInfo, VmState

#: ``DomainEvent.kind`` values.
EVENT_LIFECYCLE = "lifecycle"
EVENT_REBOOT = "reboot"
EVENT_CONNECTED = "connected"
EVENT_DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class DomainEvent:
    """Something happened on a host: a domain changed state, or the connection went or came.

    ``kind`` is ``lifecycle``/``reboot`` (then ``uuid``/``name`` name the domain) or
    ``connected``/``disconnected`` (then they are ``None``). ``detail`` is one of ``defined``,
    ``undefined``, ``started``, ``suspended``, ``resumed``, ``stopped``, ``shutdown``,
    ``pmsuspended``, ``crashed`` for lifecycle events; ``reason`` refines it (``destroyed``,
    ``from_snapshot``, ``migrated`` …) or carries the disconnect reason.
    """

    host: str
    uuid: str | None
    name: str | None
    kind: str
    detail: str
    reason: str = ""


@dataclass(frozen=True)
class VolumeRef:
    """A volume in Corral's storage pool. ``path`` is the path as the host sees it;
    ``capacity_bytes`` is the size a guest sees, ``allocation_bytes`` what it takes on disk."""

    name: str
    path: str
    format: str
    capacity_bytes: int
    backing: str | None = None
    allocation_bytes: int | None = None
    #: On storage several hosts open at once (a shared storage domain): a guest's disk then
    #: bypasses the host's page cache (``cache='none'``), which is what makes a live migration
    #: without a disk copy safe (libvirt refuses it otherwise).
    shared: bool = False


@dataclass(frozen=True)
class DomainRecord:
    """The runtime view of one libvirt domain."""

    uuid: str
    name: str
    state: VmState
    vcpus: int
    memory_mib: int
    cpu_time_s: float | None
    uptime_s: float | None
    description: str
    accelerator: Accelerator | None
    disks: list[DiskInfo] = field(default_factory=list)
    nics: list[NicInfo] = field(default_factory=list)
    corral_managed: bool = False
    xml: str = ""
    max_vcpus: int | None = None
    max_memory_mib: int | None = None
    arch: str | None = None
    machine: str | None = None
    cpu: CpuInfo | None = None
    #: A running domain's sizes at its next start, where they differ from now.
    next_start: NextStart | None = None
    #: The persistent definition (a running domain's next start); "" for transient ones.
    inactive_xml: str = ""


@dataclass(frozen=True)
class DomainCounters:
    """One running domain's cumulative CPU time (all vCPUs) and current memory."""

    uuid: str
    name: str
    vcpus: int
    memory_mib: int
    cpu_time_ns: int


@dataclass(frozen=True)
class NodeCounters:
    """A host's counters at ``taken`` (monotonic seconds): cumulative CPU busy/total time of
    the node (None where the driver has no node CPU statistics), memory, running domains."""

    taken: float
    cpus: int
    cpu_busy_ns: int | None
    cpu_total_ns: int | None
    memory_total_mib: int
    memory_available_mib: int
    domains: tuple[DomainCounters, ...] = ()
