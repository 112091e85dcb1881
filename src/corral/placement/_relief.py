"""Relieve over-used hosts: move their busiest VMs away, waking hosts in standby if needed.

A host is relieved when its estimated utilisation is at most ``high`` *and* it has shed at
least its measured excess (samples may show more load than the VMs' demands explain; the
measurement wins). Moving the busiest VMs first reaches that with the fewest migrations.

Where a VM goes, in order of preference: a running host that already has VMs (the one left
least loaded: spread), then an empty running host that is not in reserve, then a host in
standby, woken for it (the one with the lowest idle power). Hosts in reserve are never used:
they exist for spikes, and a plan never leaves fewer of them than configured.
"""

from __future__ import annotations

from corral.model.placement import HostMode, VmDemand
from corral.placement._journal import Cause, Journal
from corral.placement._reserve import current_reserve
from corral.placement.feasibility import MILLI, Ledger, utilisation, vm_load_m
from corral.placement.window import LoadBand, SustainedLoad, estimated_load


def relieve_overloads(ledger: Ledger, loads: dict[str, SustainedLoad], journal: Journal) -> None:
    """Relieve every host whose load is sustained ``HIGH``, the most loaded first.

    Passes repeat while they move something: a host relieved late may take VMs from one that
    found no room earlier, and a re-plan on the result must find nothing left to do.
    """
    original = {h: loads[h] for h in ledger.up_hosts() if loads[h].band is LoadBand.HIGH}
    # The measured load still to shed, in milli-CPUs (integers: see feasibility).
    measured = {
        h: round((load.level or 0.0) * ledger.hosts[h].cpus * MILLI) for h, load in original.items()
    }
    progress = True
    while progress:
        progress = False
        over = [h for h in original if not _relieved(ledger, measured, h)]
        over.sort(key=lambda h: (-utilisation(measured[h], ledger.hosts[h].cpus), h))
        for host in over:
            progress |= _shed(ledger, loads, journal, measured, host)
    for host, load in original.items():
        if _relieved(ledger, measured, host):
            journal.relieved[host] = load
        else:
            journal.unrelieved[host] = load


def _relieved(ledger: Ledger, measured: dict[str, int], host: str) -> bool:
    cpus = ledger.hosts[host].cpus
    return ledger.util(host) <= ledger.high and utilisation(measured[host], cpus) <= ledger.high


def _shed(
    ledger: Ledger,
    loads: dict[str, SustainedLoad],
    journal: Journal,
    measured: dict[str, int],
    host: str,
) -> bool:
    """Move ``host``'s busiest VMs away until it is relieved; True if any moved."""
    moved = False
    for vm in sorted(ledger.vms_on[host], key=lambda v: (-ledger.vm_load[v], v)):
        if _relieved(ledger, measured, host) or ledger.vm_load[vm] == 0:
            break  # sorted by load: the rest cannot help either
        target = _target(ledger, loads, journal, ledger.vms[vm], host)
        if target is not None:
            journal.move(ledger, vm, target, Cause.RELIEVE)
            measured[host] -= ledger.vm_load[vm]
            loads[target] = estimated_load(ledger.util(target), ledger.settings)
            moved = True
    if _relieved(ledger, measured, host):
        loads[host] = estimated_load(ledger.util(host), ledger.settings)
    else:  # still over: keep it out of the targets, with the load left to shed
        level = utilisation(measured[host], ledger.hosts[host].cpus)
        loads[host] = SustainedLoad(LoadBand.HIGH, level, ledger.settings.sustained_minutes)
    return moved


def _target(
    ledger: Ledger,
    loads: dict[str, SustainedLoad],
    journal: Journal,
    vm: VmDemand,
    source: str,
) -> str | None:
    busy = [
        h
        for h in ledger.up_hosts()
        if h != source
        and not ledger.is_empty(h)
        and loads[h].band is not LoadBand.HIGH
        and ledger.fits(vm, h)
    ]
    if busy:
        added = vm_load_m(vm)
        return min(
            busy, key=lambda h: (utilisation(ledger.load_m[h] + added, ledger.hosts[h].cpus), h)
        )
    reserve = current_reserve(ledger)
    idle = [
        h
        for h in ledger.up_hosts()
        if ledger.is_empty(h) and h not in reserve and ledger.fits(vm, h)
    ]
    if idle:
        return min(idle, key=lambda h: (ledger.hosts[h].power.idle_w, h))
    asleep = [
        h
        for h in ledger.names
        if ledger.mode[h] is HostMode.STANDBY and ledger.fits(vm, h, assume_up=True)
    ]
    if not asleep:
        return None
    woken = min(asleep, key=lambda h: (ledger.hosts[h].power.idle_w, -ledger.hosts[h].cpus, h))
    reason = (
        f"wake {woken}: no running host can take {vm.name} ({vm.memory_mib} MiB, "
        f"{vm.vcpus} vCPUs) from over-used {source} within the limits"
    )
    journal.wake(ledger, woken, reason)
    loads[woken] = estimated_load(ledger.util(woken), ledger.settings)
    return woken
