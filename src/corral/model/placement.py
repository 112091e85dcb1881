"""Placement and consolidation data: hosts, VM demands, policy knobs, samples and plans.

Pure data; the algorithms live in ``corral.placement``. Sizes are integers (MiB, vCPUs, CPUs);
utilisations are fractions from 0 to 1 (a host at 0.12 keeps 12 % of its physical CPUs busy).
What a host *uses* is not stored on ``HostState``: it is the sum over the ``VmDemand`` records
that name the host, plus the host's own overhead. One source of truth, so the two can never
disagree.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from corral.model.common import Name


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HostMode(StrEnum):
    """Whether a host may run VMs.

    connected   up and managed: may run and receive VMs
    maintenance an admin is working on it: never a target, and consolidation leaves its VMs alone
    standby     powered down by Corral to save energy: runs nothing; a plan may wake it
    """

    CONNECTED = "connected"
    MAINTENANCE = "maintenance"
    STANDBY = "standby"


class PowerModel(_Frozen):
    """Electrical power of one host: linear from ``idle_w`` (0 % CPU) to ``max_w`` (100 % CPU).

    The linear model is the usual first approximation (SPECpower curves are close to linear
    above idle); ``standby_w`` is what a host draws powered down (BMC and power supplies).
    """

    idle_w: float = Field(default=100.0, ge=0)
    max_w: float = Field(default=250.0, ge=0)
    standby_w: float = Field(default=10.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.standby_w <= self.idle_w <= self.max_w:
            raise ValueError("power model needs standby_w <= idle_w <= max_w")
        return self


class HostState(_Frozen):
    """A host as the planner sees it.

    ``memory_overhead_mib`` is memory the host keeps for itself (kernel, libvirt, QEMU
    overheads): never available to VMs, whatever the overcommit ratio. ``cpu_overhead`` is the
    number of physical CPUs kept busy by work that is not a VM. ``can_standby`` is False for a
    host Corral cannot switch off (no power driver that can, shut-off VMs that would be
    stranded): it is never emptied for standby nor put in standby, but it may receive VMs.
    """

    name: Name
    cpus: int = Field(ge=1, le=65536)
    memory_mib: int = Field(ge=1, le=1 << 30)
    mode: HostMode = HostMode.CONNECTED
    memory_overhead_mib: int = Field(default=0, ge=0)
    cpu_overhead: float = Field(default=0.0, ge=0)
    power: PowerModel = PowerModel()
    can_standby: bool = True


class VmDemand(_Frozen):
    """What one running VM asks of its host.

    ``cpu_utilisation`` is the measured share of its vCPUs that are busy (0 for a VM that has
    not run yet); the VM keeps ``vcpus * cpu_utilisation`` physical CPUs busy. ``host`` is where
    it runs now (None only for a VM still to be placed). VMs sharing an ``anti_affinity_group``
    never run on the same host. ``overhead_mib`` is the part of ``memory_mib`` that is not the
    guest's (QEMU's own): counted like the rest, but named apart when a refusal shows the size.
    """

    name: Name
    vcpus: int = Field(ge=1, le=512)
    memory_mib: int = Field(ge=1, le=4 * 1024 * 1024)
    overhead_mib: int = Field(default=0, ge=0)
    cpu_utilisation: float = Field(default=0.0, ge=0, le=1)
    anti_affinity_group: Name | None = None
    host: Name | None = None


class ClusterState(_Frozen):
    """Every host and every running VM at one moment.

    Invariants (checked): names are unique, each VM names a known host, and no VM runs on a host
    in standby. Capacity is *not* checked: a real cluster can be over its limits (settings
    changed, a VM grew), and the planner must still read it; it only never makes things worse.
    """

    hosts: tuple[HostState, ...]
    vms: tuple[VmDemand, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        modes = {h.name: h.mode for h in self.hosts}
        if len(modes) != len(self.hosts):
            raise ValueError("host names must be unique")
        seen: set[str] = set()
        for vm in self.vms:
            if vm.name in seen:
                raise ValueError(f"VM {vm.name} appears twice")
            seen.add(vm.name)
            if vm.host is None or vm.host not in modes:
                raise ValueError(f"VM {vm.name} runs on unknown host {vm.host}")
            if modes[vm.host] is HostMode.STANDBY:
                raise ValueError(f"VM {vm.name} runs on {vm.host}, which is in standby")
        return self


class UtilisationSample(_Frozen):
    """One measurement of a host's CPU utilisation (fraction of its physical CPUs busy)."""

    at: datetime
    cpu: float = Field(ge=0, le=1)


class PlacementPolicy(StrEnum):
    """How new VMs are placed and whether hosts are consolidated (oVirt's policy names).

    power_saving        pack VMs onto few hosts; empty under-used hosts and put them in standby
    evenly_distributed  spread VMs over hosts; only relieve over-used hosts, never power down
    """

    POWER_SAVING = "power_saving"
    EVENLY_DISTRIBUTED = "evenly_distributed"


class PolicySettings(_Frozen):
    """The knobs, with oVirt's meanings (oVirt name in brackets) and defaults.

    - ``memory_overcommit``: VM memory a host may hold, as a multiple of its memory (1.0: never
      overcommit memory).
    - ``cpu_overcommit``: vCPUs a host may hold per physical CPU.
    - ``high_utilisation`` [HighUtilization]: a host above it for ``sustained_minutes`` is
      over-used; no plan moves a VM onto a host if that takes it above this.
    - ``low_utilisation`` [LowUtilization]: a host below it for ``sustained_minutes`` is
      under-used: power_saving empties it and puts it in standby.
    - ``hosts_in_reserve`` [HostsInReserve]: empty hosts kept running to absorb load spikes.
    - ``sustained_minutes`` [CpuOverCommitDurationMinutes]: how long a condition must last.
    """

    policy: PlacementPolicy = PlacementPolicy.POWER_SAVING
    memory_overcommit: float = Field(default=1.0, gt=0, le=10)
    cpu_overcommit: float = Field(default=4.0, gt=0, le=64)
    high_utilisation: float = Field(default=0.75, gt=0, le=1)
    low_utilisation: float = Field(default=0.20, ge=0, lt=1)
    hosts_in_reserve: int = Field(default=0, ge=0, le=10_000)
    sustained_minutes: float = Field(default=2.0, gt=0, le=24 * 60)

    @model_validator(mode="after")
    def _thresholds(self) -> Self:
        if self.low_utilisation >= self.high_utilisation:
            raise ValueError("low_utilisation must be below high_utilisation")
        return self


class Migration(_Frozen):
    """Move one running VM. ``memory_mib`` and ``vcpus`` record the demand the plan assumed."""

    vm: Name
    source: Name
    target: Name
    memory_mib: int
    vcpus: int
    reason: str


class Plan(_Frozen):
    """What to do, in order: wake ``wake``, run ``migrations`` one after the other, then put
    ``standby`` in standby.

    Invariants of a plan from ``plan_consolidation``: after every single migration, every host
    keeps the memory, vCPU, anti-affinity and high-utilisation limits of ``settings``; hosts put
    in standby run no VM by then; at least ``hosts_in_reserve`` empty hosts stay running where
    the cluster has them. Watts are estimates from the hosts' power models.
    """

    settings: PolicySettings
    wake: tuple[Name, ...] = ()
    migrations: tuple[Migration, ...] = ()
    standby: tuple[Name, ...] = ()
    watts_before: float = Field(
        default=0.0,
        description="estimated from the hosts' power models at the CPU use of the VMs placed "
        "as now (a host's own work is not counted: compare with watts_after, not with the "
        "measured figures of /power/status)",
    )
    watts_after: float = Field(
        default=0.0, description="the same estimate for the placement after the plan"
    )
    reasons: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when the plan asks for nothing."""
        return not (self.wake or self.migrations or self.standby)
