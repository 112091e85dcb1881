"""Plan consolidation: relieve over-used hosts, empty under-used ones, keep the reserve.

``plan_consolidation`` is pure: a cluster snapshot, utilisation samples and a clock in, a
``Plan`` out. The steps, in this order:

1. Relief (``_relief``): hosts over ``high`` for the window shed their busiest VMs onto running
   hosts, onto empty hosts beyond the reserve, or onto hosts in standby woken for them.
2. Consolidation (``_packing``, power_saving only, and only when no host is left over-used):
   hosts under ``low`` for the window are emptied into the others, whole hosts at a time.
3. The reserve (``_reserve``): the first ``hosts_in_reserve`` empty running hosts stay running;
   if there are too few, hosts in standby are woken. Nothing is ever moved onto them.
4. Empty hosts beyond the reserve that were emptied, or are under ``low``, go to standby.

The result is a fixpoint: planning again on ``apply_plan(cluster, plan)`` (with samples that
match it) proposes nothing. Each phase runs until it changes nothing more, on the loads a re-plan
would see; the ledger counts in integers, so those loads are exactly what a re-plan computes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from corral.model.placement import (
    ClusterState,
    HostMode,
    Migration,
    PlacementPolicy,
    Plan,
    PolicySettings,
    UtilisationSample,
)
from corral.placement._journal import Cause, Journal
from corral.placement._ordering import direct_moves, feasible_order
from corral.placement._packing import drain_until_stable
from corral.placement._reasons import Outcome, explain
from corral.placement._relief import relieve_overloads
from corral.placement._reserve import current_reserve, reserve_key
from corral.placement.feasibility import Ledger
from corral.placement.power_model import ledger_watts
from corral.placement.window import LoadBand, SustainedLoad, sustained_loads


def plan_consolidation(
    cluster: ClusterState,
    samples: Mapping[str, Sequence[UtilisationSample]],
    now: datetime,
    settings: PolicySettings | None = None,
) -> Plan:
    """The plan for ``cluster`` given each host's CPU ``samples`` up to ``now``.

    Hosts without samples covering the window are neither emptied nor relieved (they may still
    receive VMs). Under ``evenly_distributed`` only over-used hosts are relieved.
    """
    settings = settings or PolicySettings()
    ledger = Ledger(cluster, settings)
    loads = sustained_loads(ledger.names, samples, now, settings)
    journal = Journal()
    relieve_overloads(ledger, loads, journal)
    shrink = settings.policy is PlacementPolicy.POWER_SAVING and not journal.unrelieved
    if shrink:
        drain_until_stable(ledger, loads, journal)
    reserve = _top_up_reserve(ledger, journal, settings)
    standby, unwoken = _settle_empty_hosts(cluster, ledger, loads, reserve, journal, shrink)
    initially_empty = {h.name for h in cluster.hosts} - {v.host for v in cluster.vms if v.host}
    kept = [h for h in reserve if h in journal.woken or h not in initially_empty]
    return _assemble(cluster, ledger, journal, kept, standby, unwoken)


def _top_up_reserve(ledger: Ledger, journal: Journal, settings: PolicySettings) -> list[str]:
    """The reserve at the end of the plan, waking hosts in standby if too few are empty."""
    reserve = current_reserve(ledger)
    asleep = [h for h in ledger.names if ledger.mode[h] is HostMode.STANDBY]
    asleep.sort(key=lambda h: reserve_key(ledger, h))
    for host in asleep[: settings.hosts_in_reserve - len(reserve)]:
        count = settings.hosts_in_reserve
        journal.wake(ledger, host, f"wake {host} to keep {count} empty host(s) in reserve")
        reserve.append(host)
    return reserve


def _settle_empty_hosts(
    cluster: ClusterState,
    ledger: Ledger,
    loads: dict[str, SustainedLoad],
    reserve: list[str],
    journal: Journal,
    shrink: bool,
) -> tuple[list[str], list[str]]:
    """Put empty hosts beyond the reserve in standby; returns (standby, woken then emptied)."""
    initial = {h.name: h.mode for h in cluster.hosts}
    standby: list[str] = []
    unwoken: list[str] = []
    for host in ledger.names:
        if not ledger.is_up(host) or not ledger.is_empty(host) or host in reserve:
            continue
        if initial[host] is HostMode.STANDBY:  # woken for relief, emptied again: never wake it
            ledger.set_mode(host, HostMode.STANDBY)
            unwoken.append(host)
        elif not ledger.hosts[host].can_standby:
            continue  # nothing can switch it off: it stays up, empty
        elif shrink and (host in journal.drained or loads[host].band is LoadBand.LOW):
            if host not in journal.drained:
                journal.idle[host] = loads[host]
            ledger.set_mode(host, HostMode.STANDBY)
            standby.append(host)
    return standby, unwoken


def _assemble(
    cluster: ClusterState,
    ledger: Ledger,
    journal: Journal,
    reserve_added: list[str],
    standby: list[str],
    unwoken: list[str],
) -> Plan:
    settings = ledger.settings
    wake = [h for h in journal.woken if ledger.mode[h] is HostMode.CONNECTED]
    moves = feasible_order(cluster, settings, direct_moves(cluster, ledger.host_of), wake)
    if moves is None:  # no direct order: replay the journal, intermediate hops included
        moves = [(s.vm, s.source, s.target) for s in journal.live_steps()]
        wake, standby = list(journal.woken), standby + unwoken
    causes = {s.source: s.cause for s in journal.live_steps()}
    migrations = [
        Migration(
            vm=vm,
            source=source,
            target=target,
            memory_mib=ledger.vms[vm].memory_mib,
            vcpus=ledger.vms[vm].vcpus,
            reason=f"{causes.get(source, Cause.EMPTY)} {source}",
        )
        for vm, source, target in moves
    ]
    outcome = Outcome(
        wake=wake,
        migrations=migrations,
        standby=standby,
        reserve_added=reserve_added,
        watts_before=ledger_watts(Ledger(cluster, settings)),
        watts_after=ledger_watts(ledger),
    )
    return Plan(
        settings=settings,
        wake=tuple(wake),
        migrations=tuple(migrations),
        standby=tuple(standby),
        watts_before=outcome.watts_before,
        watts_after=outcome.watts_after,
        reasons=explain(settings, journal, outcome),
    )
