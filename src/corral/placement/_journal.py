"""What the consolidation planner did to its ``Ledger``, step by step, and why.

The journal's live steps, in order, are a feasible sequence by construction: each move was
checked against the ledger at the moment it was made. A move that was taken back (the planner
gave up emptying the VM's host) is cancelled together with its return; dropping such a pair
keeps the rest feasible, because while the VM was away nothing was placed on its home (a host
being emptied is never a target) and its absence only gave its temporary host more room.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from corral.model.placement import HostMode
from corral.placement.feasibility import Ledger
from corral.placement.window import SustainedLoad


class Cause(StrEnum):
    RELIEVE = "relieve"  # the source is over-used
    EMPTY = "empty"  # the source is being emptied for standby


@dataclass
class Step:
    vm: str
    source: str
    target: str
    cause: Cause
    cancelled: bool = False


@dataclass
class Journal:
    """Moves and host decisions of one planning run, with the loads that justified them."""

    steps: list[Step] = field(default_factory=list)
    woken: list[str] = field(default_factory=list)
    wake_reasons: dict[str, str] = field(default_factory=dict)
    relieved: dict[str, SustainedLoad] = field(default_factory=dict)
    unrelieved: dict[str, SustainedLoad] = field(default_factory=dict)
    drained: dict[str, SustainedLoad] = field(default_factory=dict)
    idle: dict[str, SustainedLoad] = field(default_factory=dict)  # already empty, to standby
    _live: dict[str, list[int]] = field(default_factory=dict)  # vm -> its live steps' indexes

    def move(self, ledger: Ledger, vm: str, target: str, cause: Cause) -> None:
        """Move ``vm`` in the ledger and record the step."""
        source = ledger.move(vm, target)
        self._live.setdefault(vm, []).append(len(self.steps))
        self.steps.append(Step(vm, source, target, cause))

    def take_back(self, ledger: Ledger, vm: str) -> str:
        """Undo ``vm``'s latest move (its host becomes the source again); returns the host it
        leaves."""
        step = self.steps[self._live[vm].pop()]
        step.cancelled = True
        ledger.move(vm, step.source)
        return step.target

    def wake(self, ledger: Ledger, host: str, reason: str) -> None:
        ledger.set_mode(host, HostMode.CONNECTED)
        self.woken.append(host)
        self.wake_reasons[host] = reason

    def live_steps(self) -> list[Step]:
        return [s for s in self.steps if not s.cancelled]
