"""Human-readable reasons: for each step of a consolidation plan, and for a new VM that no
host can take.

h2 at 91 % CPU for 2 min > high 75 %: move 2 VMs away (web1, db2)
h3 at 12 % CPU for 2 min < low 20 %: move its 2 VMs, then standby
h5 runs no VM and is at 1 % CPU for 2 min < low 20 %: standby
estimated power 1,250 W -> 810 W

no host can take VM web1 (2 vCPUs, memory 2 GiB + 64 MiB for QEMU): h1 has 1 GiB free, …

The words are the user's (memory, vCPUs, hosts, the cluster settings' names), never an API
field or a CLI flag: the same sentence reaches both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from corral.errors import HostRefusal
from corral.model.placement import Migration, PolicySettings, VmDemand
from corral.placement._journal import Journal
from corral.placement.feasibility import Constraint, Ledger, percent, size
from corral.placement.window import SustainedLoad


@dataclass(frozen=True)
class Outcome:
    """What a plan ends up doing, as the reasons describe it."""

    wake: Sequence[str]
    migrations: Sequence[Migration]
    standby: Sequence[str]
    reserve_added: Sequence[str]
    watts_before: float
    watts_after: float


def _load(load: SustainedLoad) -> str:
    level = percent(load.level or 0.0)
    if load.estimated:
        return f"at {level} CPU (estimated after the moves above)"
    return f"at {level} CPU for {load.minutes:g} min"


def _vms(count: int) -> str:
    return "1 VM" if count == 1 else f"{count} VMs"


def _names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def explain(settings: PolicySettings, journal: Journal, outcome: Outcome) -> tuple[str, ...]:
    """One sentence per woken, relieved, emptied or standby host, then the power estimate."""
    high, low = percent(settings.high_utilisation), percent(settings.low_utilisation)
    leaving: dict[str, list[str]] = defaultdict(list)
    for m in outcome.migrations:
        leaving[m.source].append(m.vm)
    reasons = [journal.wake_reasons[h] for h in outcome.wake if h in journal.wake_reasons]
    for host, load in journal.relieved.items():
        if leaving[host]:
            moved = f"move {_vms(len(leaving[host]))} away ({_names(leaving[host])})"
            reasons.append(f"{host} {_load(load)} > high {high}: {moved}")
    for host, load in journal.unrelieved.items():
        reasons.append(
            f"{host} {_load(load)} > high {high}: no host can take enough of its load; "
            "add or wake hosts (no host is put in standby meanwhile)"
        )
    for host, load in journal.drained.items():
        if host in outcome.standby:
            then = "then standby"
        elif host in outcome.reserve_added:
            then = f"then keep it running empty (hosts in reserve: {settings.hosts_in_reserve})"
        else:
            continue  # a host woken by this plan and emptied again: it simply stays in standby
        count = _vms(len(leaving[host]))
        reasons.append(f"{host} {_load(load)} < low {low}: move its {count}, {then}")
    for host in outcome.standby:
        if host not in journal.drained:
            reasons.append(
                f"{host} runs no VM and is {_load(journal.idle[host])} < low {low}: standby"
            )
    if reasons:
        before, after = outcome.watts_before, outcome.watts_after
        reasons.append(f"estimated power {before:,.0f} W -> {after:,.0f} W")
    return tuple(reasons)


def _demand(vm: VmDemand) -> str:
    guest = size(vm.memory_mib - vm.overhead_mib)
    qemu = f" + {size(vm.overhead_mib)} for QEMU" if vm.overhead_mib else ""
    vcpus = "1 vCPU" if vm.vcpus == 1 else f"{vm.vcpus} vCPUs"
    return f"{vcpus}, memory {guest}{qemu}"


def _beyond_every_host(vm: VmDemand, ledger: Ledger) -> str | None:
    """The refusal of a VM with more memory than any host has at all (no setting and no
    choice of host helps: only a smaller VM); None when some host is that large."""
    guest = vm.memory_mib - vm.overhead_mib
    largest = max(ledger.hosts.values(), key=lambda h: h.memory_mib)
    if guest <= largest.memory_mib:
        return None
    text = (
        f"no host can take VM {vm.name}: it asks for memory {size(guest)}, more than any host "
        f"has (the largest, {largest.name}, has {size(largest.memory_mib)})"
    )
    running = list(ledger.up_hosts())
    if running:
        roomiest = max(running, key=ledger.free_memory)  # the first in cluster order on a tie
        free = max(ledger.free_memory(roomiest), 0)
        text += f"; the most free on any host is {size(free)}, on {roomiest}"
    return text + ": ask for less memory"


def _policy_advice(refusals: Sequence[HostRefusal], settings: PolicySettings) -> str:
    """What lifts the placement policy's limits, when they are what refused the VM."""
    failed = {r.constraint for r in refusals}
    limits = []
    if Constraint.VCPUS in failed:
        limits.append(f"vCPUs within cpu_overcommit ({settings.cpu_overcommit:g} per CPU)")
    if Constraint.MEMORY in failed:
        ratio = f"{settings.memory_overcommit:g}"
        limits.append(f"memory within memory_overcommit ({ratio} times a host's memory)")
    upload = (
        "upload the images it names to another host (`corral image upload FILE --host HOST`)"
        if Constraint.IMAGES in failed
        else ""
    )
    if Constraint.STORAGE in failed:
        reach = "check the hosts' reach of the VM's storage domains (`corral storage-domain show`)"
        upload = f"{upload}; or {reach}" if upload else reach
    if not limits:
        return f". {upload[0].upper()}{upload[1:]}" if upload else ""
    which = "that cluster setting" if len(limits) == 1 else "those cluster settings"
    return (
        f". The placement policy keeps {' and '.join(limits)}: name a host for the VM to place "
        f"it there regardless (that host's own limits still apply), or raise {which} "
        "(`corral cluster set`)" + (f"; or {upload}" if upload else "")
    )


def no_host(vm: VmDemand, ledger: Ledger, refusals: Sequence[HostRefusal]) -> str:
    """Why no host can take the new VM ``vm`` (``refusals``: each host's obstacle), and what
    would help."""
    if not ledger.names:
        return f"no host can take VM {vm.name}: the cluster has no host"
    beyond = _beyond_every_host(vm, ledger)
    if beyond is not None:
        return beyond
    details = ", ".join(r.detail for r in refusals)
    advice = _policy_advice(refusals, ledger.settings)
    return f"no host can take VM {vm.name} ({_demand(vm)}): {details}{advice}"
