"""Human-readable reasons for each step of a consolidation plan.

h2 at 91 % CPU for 2 min > high 75 %: move 2 VMs away (web1, db2)
h3 at 12 % CPU for 2 min < low 20 %: move its 2 VMs, then standby
h5 runs no VM and is at 1 % CPU for 2 min < low 20 %: standby
estimated power 1,250 W -> 810 W
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from corral.model.placement import Migration, PolicySettings
from corral.placement._journal import Journal
from corral.placement.feasibility import percent
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
