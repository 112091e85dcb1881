"""Empty under-used hosts into the others: the heart of power-saving consolidation.

One round:

1. Candidates are running hosts with VMs whose load is sustained ``LOW`` and that can be put
   in standby (``HostState.can_standby``; the others only receive VMs). They are ranked by
   what keeping them saves: most VMs first (every VM on a kept host is a migration avoided),
   then most memory in use.
2. Keep the shortest prefix of that ranking for which the capacity left on kept hosts and on
   the other running hosts covers, in memory, vCPUs and CPU, what the rest of the candidates
   run (a necessary condition; the rest are to be emptied).
3. Place the VMs of the hosts to empty, largest memory first, each on the host whose free
   memory fits it most tightly (best-fit decreasing), checking every limit. The targets are
   kept in a list sorted by free memory, so a placement is a binary search, not a scan.
4. When a VM fits nowhere, give up emptying its host: its VMs already moved come back, the host
   joins the targets, and the round goes on. Each host is thus emptied completely or not at
   all, and every migration empties a host.

Rounds repeat on the result until one empties nothing, so that planning again on a plan's
result finds nothing more to do (a plan is a fixpoint).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort

from corral.model.placement import VmDemand
from corral.placement._journal import Cause, Journal
from corral.placement.feasibility import MILLI, Ledger
from corral.placement.window import LoadBand, SustainedLoad, estimated_load


class _FreeMemoryIndex:
    """Target hosts sorted by free memory (then name): best fit by binary search."""

    def __init__(self, ledger: Ledger, hosts: list[str]) -> None:
        self._ledger = ledger
        self._key: dict[str, tuple[int, str]] = {h: (ledger.free_memory(h), h) for h in hosts}
        self._entries = sorted(self._key.values())

    def add(self, host: str) -> None:
        key = (self._ledger.free_memory(host), host)
        self._key[host] = key
        insort(self._entries, key)

    def refresh(self, host: str) -> None:
        """Re-sort ``host`` after its free memory changed."""
        old = self._key[host]
        del self._entries[bisect_left(self._entries, old)]
        self.add(host)

    def best_fit(self, vm: VmDemand) -> str | None:
        """The host with the least free memory that can take ``vm`` within every limit."""
        entries, ledger = self._entries, self._ledger
        for i in range(bisect_left(entries, (vm.memory_mib, "")), len(entries)):
            host = entries[i][1]
            if ledger.fits(vm, host):
                return host
        return None


def drain_until_stable(ledger: Ledger, loads: dict[str, SustainedLoad], journal: Journal) -> None:
    """Run rounds until one empties no host."""
    while _drain_round(ledger, loads, journal):
        pass


def _drain_round(ledger: Ledger, loads: dict[str, SustainedLoad], journal: Journal) -> bool:
    busy = [h for h in ledger.up_hosts() if not ledger.is_empty(h)]
    # A host that cannot be switched off is never emptied, whatever its load: it only receives.
    candidates = [h for h in busy if loads[h].band is LoadBand.LOW and ledger.hosts[h].can_standby]
    others = [
        h
        for h in busy
        if loads[h].band in (LoadBand.NORMAL, LoadBand.UNKNOWN)
        or (loads[h].band is LoadBand.LOW and not ledger.hosts[h].can_standby)
    ]
    candidates.sort(key=lambda h: (-len(ledger.vms_on[h]), -ledger.mem_used[h], h))
    keep = _keep_count(ledger, candidates, others)
    if keep == len(candidates):
        return False
    first_step = len(journal.steps)
    index = _FreeMemoryIndex(ledger, others + candidates[:keep])
    emptied = _empty_hosts(ledger, index, candidates[keep:], journal)
    for host in emptied:
        journal.drained[host] = loads[host]
    # Hosts that received VMs now carry a load the planner estimates; a re-plan on the result
    # would measure the same, so later rounds must see it too.
    for step in journal.steps[first_step:]:
        if not step.cancelled:
            loads[step.target] = estimated_load(ledger.util(step.target), ledger.settings)
            loads[step.source] = estimated_load(ledger.util(step.source), ledger.settings)
    return bool(emptied)


def _free(ledger: Ledger, host: str) -> tuple[int, int, int]:
    """Room left on ``host`` in memory, vCPUs and CPU (milli-CPUs under ``high``)."""
    cpu_cap = math.floor(ledger.high * ledger.hosts[host].cpus * MILLI)
    return (
        max(ledger.free_memory(host), 0),
        max(ledger.vcpu_cap[host] - ledger.vcpus_used[host], 0),
        max(cpu_cap - ledger.load_m[host], 0),
    )


def _used(ledger: Ledger, host: str) -> tuple[int, int, int]:
    """What the VMs on ``host`` use in memory, vCPUs and CPU (milli-CPUs)."""
    vms_load = sum(ledger.vm_load[v] for v in ledger.vms_on[host])
    return ledger.mem_used[host], ledger.vcpus_used[host], vms_load


def _keep_count(ledger: Ledger, candidates: list[str], others: list[str]) -> int:
    """The shortest prefix of ``candidates`` to keep so that the rest could fit elsewhere."""
    room = [0, 0, 0]
    for host in others:
        room = [r + f for r, f in zip(room, _free(ledger, host), strict=True)]
    demand = [0, 0, 0]
    for host in candidates:
        demand = [d + u for d, u in zip(demand, _used(ledger, host), strict=True)]
    for kept, host in enumerate(candidates):
        if all(r >= d for r, d in zip(room, demand, strict=True)):
            return kept
        used, free = _used(ledger, host), _free(ledger, host)
        demand = [d - u for d, u in zip(demand, used, strict=True)]
        room = [r + f for r, f in zip(room, free, strict=True)]
    return len(candidates)


def _empty_hosts(
    ledger: Ledger, index: _FreeMemoryIndex, hosts: list[str], journal: Journal
) -> list[str]:
    """Try to empty ``hosts``; returns those emptied (each completely)."""
    emptying = set(hosts)
    home = {vm: host for host in hosts for vm in ledger.vms_on[host]}
    moved: dict[str, list[str]] = {host: [] for host in hosts}
    queue = sorted(home, key=lambda v: (-ledger.vms[v].memory_mib, -ledger.vms[v].vcpus, v))
    for vm in queue:
        source = home[vm]
        if source not in emptying:
            continue  # its host is kept after all: the VM stays
        target = index.best_fit(ledger.vms[vm])
        if target is None:
            # Give the host up: bring its VMs back, and offer the room it has to the others.
            for back in moved[source]:
                index.refresh(journal.take_back(ledger, back))
            emptying.discard(source)
            index.add(source)
            continue
        journal.move(ledger, vm, target, Cause.EMPTY)
        index.refresh(target)
        moved[source].append(vm)
    return [h for h in hosts if h in emptying]
