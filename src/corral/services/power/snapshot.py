"""The cluster as the planner sees it: ``ClusterState`` and utilisation samples built from the
inventory, libvirt and the stored samples.

What the planner is not told to touch is shown to it as something it leaves alone, with a
note saying why (``PowerPlan.notes``):

- a host that is unreachable, or (for consolidation) not enrolled — Corral migrates only
  between enrolled hosts — counts as in maintenance: never a target, its VMs stay;
- a host in standby that nothing can wake is left out;
- a host Corral cannot power down (no driver that can, or shut-off VMs that would be
  stranded) is never emptied nor put in standby (``HostState.can_standby``): it still
  receives VMs and is still relieved when over-used.

Samples taken before the last change of placement (a power task or a migration that finished)
are ignored, so the planner judges hosts only on what they do since: a host that just
received VMs is not emptied again on its old idle figures.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from corral import store
from corral.errors import CorralError
from corral.model.placement import (
    ClusterState,
    HostMode,
    HostState,
    PolicySettings,
    PowerModel,
    UtilisationSample,
    VmDemand,
)
from corral.model.power import HostSample, VmSample
from corral.model.vm import VmState
from corral.services._db import Db
from corral.services.hosts import HostService
from corral.services.migrations.preflight import QEMU_OVERHEAD_MIB
from corral.services.power.drivers import PowerDriver
from corral.services.power.host_sums import summed_demands
from corral.services.vms.inventory import VmInventory

#: Memory a host keeps for itself (kernel, libvirtd): 5 % of it, at most 1 GiB; never given
#: to VMs by a plan.
HOST_MEMORY_RESERVE_MIB = 1024
HOST_MEMORY_RESERVE_SHARE = 0.05
_LIVE = (VmState.RUNNING, VmState.PAUSED, VmState.BLOCKED)


@dataclass
class Snapshot:
    cluster: ClusterState
    samples: dict[str, list[UtilisationSample]]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Facts:
    """What a snapshot is built from (gathered by ``SnapshotBuilder.facts``; the assembly
    itself, ``assemble``, is pure)."""

    hosts: list[tuple[str, int, int]]  # name, cpus, memory MiB (in the registry's order)
    connected: set[str]
    maintenance: set[str]
    standby: set[str]
    enrolled: set[str]
    drivers: dict[str, PowerDriver]
    models: dict[str, PowerModel]
    running: list[tuple[str, str, int, int]]  # vm, host, vcpus, memory MiB
    stopped_on: dict[str, list[str]]  # host -> shut-off VMs
    host_samples: list[HostSample]
    vm_samples: list[VmSample]
    settled: datetime | None  # the last change of placement
    #: Placement's instead of ``running``: host -> (domains, vCPUs, memory MiB) of its live
    #: domains, from the cluster view.
    running_sums: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    #: Placement's instead of ``host_samples``: host -> mean CPU use over the sustained window.
    host_busy: dict[str, float] = field(default_factory=dict)


def assemble(
    facts: Facts, settings: PolicySettings, now: datetime, *, consolidation: bool
) -> Snapshot:
    notes: list[str] = []
    modes: dict[str, HostMode] = {}
    for name, _cpus, _memory in facts.hosts:
        driver = facts.drivers.get(name)
        if name in facts.standby:
            if driver is None or not driver.can_power_on:
                notes.append(f"{name} is in standby and no driver can wake it: left out")
                continue
            modes[name] = HostMode.STANDBY
        elif name in facts.maintenance:
            modes[name] = HostMode.MAINTENANCE
        elif name not in facts.connected:
            notes.append(f"{name} is unreachable: its VMs stay, none go there")
            modes[name] = HostMode.MAINTENANCE
        elif consolidation and name not in facts.enrolled:
            notes.append(
                f"{name} was added by URI, not enrolled: Corral migrates only between enrolled "
                "hosts, so its VMs stay and none go there"
            )
            modes[name] = HostMode.MAINTENANCE
        else:
            modes[name] = HostMode.CONNECTED
    pinned = _pinned(facts, modes, settings, consolidation)
    for name, why in pinned.items():
        notes.append(f"{name} is never emptied for standby: {why}")
    hosts = tuple(
        # Trusted facts (names of registered hosts, sizes floored at 1): one validation per
        # host at every create was the largest part of placement's cost at 500 hosts.
        HostState.model_construct(
            name=name,
            can_standby=name not in pinned,
            cpus=max(cpus, 1),
            memory_mib=max(memory, 1),
            mode=modes[name],
            memory_overhead_mib=min(
                HOST_MEMORY_RESERVE_MIB, int(memory * HOST_MEMORY_RESERVE_SHARE)
            ),
            power=facts.models.get(name, PowerModel()),
        )
        for name, cpus, memory in facts.hosts
        if name in modes
    )
    vm_cpu = _vm_means(facts.vm_samples, now - timedelta(minutes=settings.sustained_minutes))
    running = [r for r in facts.running if modes.get(r[1]) not in (None, HostMode.STANDBY)]
    if consolidation:
        vms = tuple(
            VmDemand(
                name=vm,
                vcpus=vcpus,
                memory_mib=memory + QEMU_OVERHEAD_MIB,
                cpu_utilisation=vm_cpu.get(vm, 0.0),
                host=host,
            )
            for vm, host, vcpus, memory in running
        )
    else:
        cpus = {name: max(c, 1) for name, c, _memory in facts.hosts}
        sums = {h: t for h, t in facts.running_sums.items() if h in modes}
        vms = summed_demands(sums, cpus, facts.host_busy)
    samples = _host_samples(facts, modes)
    return Snapshot(ClusterState(hosts=hosts, vms=vms), samples, notes)


def _vm_means(samples: list[VmSample], since: datetime) -> dict[str, float]:
    sums: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        if s.at >= since:
            sums[s.vm].append(s.cpu)
    return {vm: min(1.0, sum(values) / len(values)) for vm, values in sums.items()}


def _pinned(
    facts: Facts, modes: dict[str, HostMode], settings: PolicySettings, consolidation: bool
) -> dict[str, str]:
    """Running hosts power-saving must not put in standby, with the reason why."""
    pinned: dict[str, str] = {}
    if not consolidation or settings.policy.value != "power_saving":
        return pinned
    for name, mode in modes.items():
        if mode is not HostMode.CONNECTED:
            continue
        driver = facts.drivers.get(name)
        if driver is None or not driver.can_power_off:
            pinned[name] = "no power driver that can switch it off"
        elif facts.stopped_on.get(name):
            stopped = ", ".join(sorted(facts.stopped_on[name])[:3])
            pinned[name] = f"its shut-off VMs ({stopped}) would be stranded"
    return pinned


def _host_samples(facts: Facts, modes: dict[str, HostMode]) -> dict[str, list[UtilisationSample]]:
    samples: dict[str, list[UtilisationSample]] = defaultdict(list)
    for s in facts.host_samples:
        if s.standby or modes.get(s.host) is not HostMode.CONNECTED:
            continue
        if facts.settled is not None and s.at <= facts.settled:
            continue
        samples[s.host].append(UtilisationSample(at=s.at, cpu=min(s.cpu, 1.0)))
    return dict(samples)


#: Task kinds that change where VMs run or which hosts are up.
PLACEMENT_TASKS = ("power.apply", "host.power_on", "host.power_off", "vm.migrate")


class SnapshotBuilder:
    def __init__(self, db: Db, hosts: HostService, inventory: VmInventory) -> None:
        self._db = db
        self._hosts = hosts
        self._inventory = inventory

    async def _vms(
        self,
    ) -> tuple[list[tuple[str, str, int, int]], dict[str, list[str]]]:
        """Running VMs (name, host, vcpus, memory) and the shut-off ones per host, from the
        inventory (rows and libvirt): consolidation moves VMs by name."""
        running: list[tuple[str, str, int, int]] = []
        stopped: dict[str, list[str]] = defaultdict(list)
        for vm in await self._inventory.list_vms():
            if vm.state in _LIVE:
                running.append((vm.name, vm.host, vm.vcpus, vm.memory_mib))
            else:
                stopped[vm.host].append(vm.name)
        return running, dict(stopped)

    async def _sums(self) -> dict[str, tuple[int, int, int]]:
        """Placement's: each host's live domains as sums, from the cluster view (its cost
        does not grow with the inventory)."""
        sums = {}
        view = self._inventory.view
        for host in self._hosts.all():
            listed = view.listed(host.name) or await view.ensure_listed(host.name) is not None
            if listed:
                total = view.running_sum(host.name)
                if total is not None:
                    sums[host.name] = (total.domains, total.vcpus, total.memory_mib)
        return sums

    async def facts(
        self,
        drivers: dict[str, PowerDriver],
        models: dict[str, PowerModel],
        settings: PolicySettings,
        now: datetime,
        *,
        consolidation: bool = True,
    ) -> Facts:
        rows = {row.name: row for row in await self._db.read(store.list_hosts)}
        hosts = []
        for host in self._hosts.all():
            caps = host.known_capabilities
            if caps is None and host.connected:
                try:
                    caps = await host.capabilities()
                except CorralError:
                    caps = None
            hosts.append((host.name, caps.cpus if caps else 1, caps.memory_mib if caps else 1))
        running, stopped = await self._vms() if consolidation else ([], {})
        # Twice the window: sustained_load needs a sample at or before the window's start.
        since = now - timedelta(minutes=2 * settings.sustained_minutes)
        host_rows: list[HostSample] = []
        vm_rows: list[VmSample] = []
        busy: dict[str, float] = {}
        if consolidation:
            host_rows = await self._db.read(lambda s: store.host_samples(s, since))
            vm_rows = await self._db.read(lambda s: store.vm_samples(s, since))
        else:
            # Placement: each host's mean over the window, summed by the database (every
            # sample of 500 hosts over the window, read at every create, was most of its time).
            window = now - timedelta(minutes=settings.sustained_minutes)
            busy = await self._db.read(lambda s: store.host_cpu_means(s, window))
        settled = await self._db.read(lambda s: store.last_finished(s, PLACEMENT_TASKS))
        return Facts(
            hosts=hosts,
            connected={h.name for h in self._hosts.all() if h.connected},
            maintenance={n for n in rows if self._hosts.in_maintenance(n)},
            standby={n for n in rows if self._hosts.in_standby(n)},
            enrolled={n for n, row in rows.items() if row.address is not None},
            drivers=drivers,
            models=models,
            running=running,
            stopped_on=stopped,
            host_samples=host_rows,
            vm_samples=vm_rows,
            settled=settled,
            running_sums={} if consolidation else await self._sums(),
            host_busy=busy,
        )
