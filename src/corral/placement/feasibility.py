"""The limits every plan keeps, and the planner's working copy of a cluster (``Ledger``).

Hard limits, kept after every single step of a plan (``Ledger.refusal`` says which one fails):

- a VM only goes to a connected host (not in maintenance, not in standby);
- memory: the VMs' memory stays ≤ ``memory_mib * memory_overcommit - memory_overhead_mib``;
- vCPUs: the VMs' vCPUs stay ≤ ``cpus * cpu_overcommit``;
- anti-affinity: two VMs of one group never share a host;
- CPU: a host *receiving* a VM stays at or below ``high_utilisation`` (estimated from demands).

A host that already breaks a limit (the input is what the world is) is never made worse: it can
only lose VMs until it is back within its limits.

CPU load is counted in integer milli-CPUs: a ledger updated move by move and one built afresh
from the plan's result then hold exactly the same numbers. Floating-point sums taken in another
order would not, and a re-plan could flip a borderline decision (planning must be idempotent).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from enum import StrEnum

from corral.errors import HostRefusal
from corral.model.placement import ClusterState, HostMode, HostState, PolicySettings, VmDemand

MILLI = 1000


class Constraint(StrEnum):
    """The limit a host failed (``HostRefusal.constraint``)."""

    MAINTENANCE = "maintenance"
    STANDBY = "standby"
    MEMORY = "memory"
    VCPUS = "vcpus"
    CPU_LOAD = "cpu_load"
    ANTI_AFFINITY = "anti_affinity"
    IMAGES = "images"  # a new VM's images are not on the host (initial placement only)
    STORAGE = "storage"  # the host does not reach a storage domain the VM's disks use


def percent(fraction: float) -> str:
    """``0.123`` → ``"12 %"``: how reasons and errors show utilisations."""
    return f"{fraction * 100:.0f} %"


def size(mib: int) -> str:
    """``1536`` → ``"1.5 GiB"``: how reasons and errors show memory (binary units, one decimal
    at most, like the CLI's tables)."""
    value = float(mib)
    for unit in ("MiB", "GiB", "TiB"):
        if round(value, 1) < 1024 or unit == "TiB":
            return f"{value:.1f}".removesuffix(".0") + f" {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def vm_load_m(vm: VmDemand) -> int:
    """Physical CPUs the VM keeps busy, in milli-CPUs."""
    return round(vm.vcpus * vm.cpu_utilisation * MILLI)


def memory_capacity_mib(host: HostState, settings: PolicySettings) -> int:
    """Memory the host may give to VMs under the overcommit ratio."""
    return math.floor(host.memory_mib * settings.memory_overcommit) - host.memory_overhead_mib


def vcpu_capacity(host: HostState, settings: PolicySettings) -> int:
    """vCPUs the host may run under the CPU overcommit ratio."""
    return math.floor(host.cpus * settings.cpu_overcommit)


def utilisation(load_m: int, cpus: int) -> float:
    """Estimated CPU utilisation of a host; the one formula every comparison uses."""
    return load_m / (cpus * MILLI)


class Ledger:
    """A mutable copy of a cluster: where each VM runs and how full each host is.

    Invariant: ``mem_used``, ``vcpus_used``, ``load_m`` and ``groups`` always equal the sums over
    ``vms_on`` (plus the host's CPU overhead); ``move`` is the only way VMs change hosts. Host
    order (``names``) is the cluster's, so every walk over hosts is deterministic.
    """

    def __init__(self, cluster: ClusterState, settings: PolicySettings) -> None:
        self.settings = settings
        self.high = settings.high_utilisation
        self.hosts: dict[str, HostState] = {h.name: h for h in cluster.hosts}
        self.names: tuple[str, ...] = tuple(self.hosts)
        self.mode: dict[str, HostMode] = {h.name: h.mode for h in cluster.hosts}
        self.vms: dict[str, VmDemand] = {v.name: v for v in cluster.vms}
        self.vm_load: dict[str, int] = {v.name: vm_load_m(v) for v in cluster.vms}
        self.mem_cap = {h.name: memory_capacity_mib(h, settings) for h in cluster.hosts}
        self.vcpu_cap = {h.name: vcpu_capacity(h, settings) for h in cluster.hosts}
        self.host_of: dict[str, str] = {}
        self.vms_on: dict[str, set[str]] = {name: set() for name in self.names}
        self.mem_used = dict.fromkeys(self.names, 0)
        self.vcpus_used = dict.fromkeys(self.names, 0)
        self.load_m = {h.name: round(h.cpu_overhead * MILLI) for h in cluster.hosts}
        self.groups: dict[str, dict[str, set[str]]] = {name: {} for name in self.names}
        for vm in cluster.vms:
            if vm.host is not None:  # ClusterState guarantees it; the check narrows the type
                self._add(vm.name, vm.host)

    # -- changes ---------------------------------------------------------------------------

    def _add(self, vm: str, host: str) -> None:
        demand = self.vms[vm]
        self.host_of[vm] = host
        self.vms_on[host].add(vm)
        self.mem_used[host] += demand.memory_mib
        self.vcpus_used[host] += demand.vcpus
        self.load_m[host] += self.vm_load[vm]
        if demand.anti_affinity_group is not None:
            self.groups[host].setdefault(demand.anti_affinity_group, set()).add(vm)

    def _remove(self, vm: str) -> str:
        demand = self.vms[vm]
        host = self.host_of.pop(vm)
        self.vms_on[host].discard(vm)
        self.mem_used[host] -= demand.memory_mib
        self.vcpus_used[host] -= demand.vcpus
        self.load_m[host] -= self.vm_load[vm]
        group = demand.anti_affinity_group
        if group is not None:
            members = self.groups[host][group]
            members.discard(vm)
            if not members:
                del self.groups[host][group]
        return host

    def move(self, vm: str, target: str) -> str:
        """Move ``vm`` to ``target`` without checking limits; returns the host it left."""
        source = self._remove(vm)
        self._add(vm, target)
        return source

    def set_mode(self, host: str, mode: HostMode) -> None:
        """Wake a host (``CONNECTED``) or put an empty one in ``STANDBY``."""
        if mode is HostMode.STANDBY and self.vms_on[host]:
            raise ValueError(f"{host} still runs VMs and cannot go to standby")
        self.mode[host] = mode

    # -- questions -------------------------------------------------------------------------

    def is_up(self, host: str) -> bool:
        return self.mode[host] is HostMode.CONNECTED

    def is_empty(self, host: str) -> bool:
        return not self.vms_on[host]

    def up_hosts(self) -> Iterator[str]:
        return (h for h in self.names if self.mode[h] is HostMode.CONNECTED)

    def util(self, host: str) -> float:
        return utilisation(self.load_m[host], self.hosts[host].cpus)

    def free_memory(self, host: str) -> int:
        return self.mem_cap[host] - self.mem_used[host]

    def conflict(self, vm: VmDemand, host: str) -> str | None:
        """Another VM of ``vm``'s anti-affinity group on ``host`` (the first by name), if any."""
        group = vm.anti_affinity_group
        if group is None:
            return None
        members = self.groups[host].get(group)
        if not members or (len(members) == 1 and vm.name in members):
            return None
        return min(m for m in members if m != vm.name)

    def fits(
        self, vm: VmDemand, host: str, *, check_load: bool = True, assume_up: bool = False
    ) -> bool:
        """Whether ``vm`` may move to (or start on) ``host``: the fast form of ``refusal``.

        ``assume_up`` asks about a host in standby as if it were woken first.
        """
        mode = self.mode[host]
        if mode is not HostMode.CONNECTED and not (assume_up and mode is HostMode.STANDBY):
            return False
        if self.mem_used[host] + vm.memory_mib > self.mem_cap[host]:
            return False
        if self.vcpus_used[host] + vm.vcpus > self.vcpu_cap[host]:
            return False
        load = self.load_m[host] + vm_load_m(vm)
        if check_load and utilisation(load, self.hosts[host].cpus) > self.high:
            return False
        return vm.anti_affinity_group is None or self.conflict(vm, host) is None

    def refusal(self, vm: VmDemand, host: str, *, check_load: bool = True) -> HostRefusal | None:
        """The first limit ``host`` fails for ``vm``, in words; None when the VM fits."""
        mode = self.mode[host]
        if mode is HostMode.MAINTENANCE:
            return HostRefusal(host, Constraint.MAINTENANCE, f"{host} is in maintenance")
        if mode is HostMode.STANDBY:
            return HostRefusal(host, Constraint.STANDBY, f"{host} is in standby")
        free = self.free_memory(host)
        if vm.memory_mib > free:
            detail = f"{host} has {size(max(free, 0))} free"
            return HostRefusal(host, Constraint.MEMORY, detail)
        free_vcpus = self.vcpu_cap[host] - self.vcpus_used[host]
        if vm.vcpus > free_vcpus:
            detail = f"{host} has {max(free_vcpus, 0)} of {self.vcpu_cap[host]} vCPUs free"
            return HostRefusal(host, Constraint.VCPUS, detail)
        after = utilisation(self.load_m[host] + vm_load_m(vm), self.hosts[host].cpus)
        if check_load and after > self.high:
            detail = f"{host} would reach {percent(after)} CPU > high {percent(self.high)}"
            return HostRefusal(host, Constraint.CPU_LOAD, detail)
        other = self.conflict(vm, host)
        if other is not None:
            detail = f"{host} already runs {other} of anti-affinity group {vm.anti_affinity_group}"
            return HostRefusal(host, Constraint.ANTI_AFFINITY, detail)
        return None
