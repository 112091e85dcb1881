"""The live-migration state machine: phases, the transitions allowed between them, and the
record that persists every step in the task (``result["migration"]``).

    CHECKING ──> PREPARED ──> MIGRATING ──────────────────────────> FINISHING ──> COMPLETED
        │            │          │  │  │                                 ▲
        │            │          │  │  └─> POSTCOPY ──────────────────────┤
        │            │          │  └────> ABORTING ──> CANCELLED         │ (too late: it
        │            │          │             └────────────────────────┤  completed anyway)
        │            │          └───────> UNCERTAIN ───────────────────┘
        │            │                        └──> FAILED | CANCELLED
        └────────────┴──> FAILED                  MIGRATING ──> FAILED
                                                  FINISHING ──> UNCERTAIN (Corral lost there)

Before MIGRATING nothing changed on any host. From MIGRATING on, the source host's libvirtd
drives the migration (peer-to-peer): it goes on if Corral stops, so a restarted Corral finds
such a task in UNCERTAIN and looks at both hosts for the real outcome. After POSTCOPY the
guest runs on the destination: there is no way back, cancelling is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import IntEnum

from corral.errors import Conflict
from corral.model.migration import MigrationInfo, MigrationStats, MigrationStep


class MigrationPhase(IntEnum):
    CHECKING = 0  # pre-flight checks: nothing changed anywhere
    PREPARED = 1  # checks passed, the VM is locked; libvirt not called yet
    MIGRATING = 2  # the source's libvirtd migrates (survives a restart of Corral)
    POSTCOPY = 3  # switched to post-copy: runs on the destination, memory follows
    ABORTING = 4  # a user cancelled: abortJob sent to the source
    UNCERTAIN = 5  # Corral lost the source or restarted: look at both hosts
    FINISHING = 6  # it runs on the destination: update the inventory, read the statistics
    COMPLETED = 7  # on the destination, inventory updated
    FAILED = 8  # the VM stays on (or is back on) its source
    CANCELLED = 9  # aborted by a user; the VM stays on its source

    @property
    def final(self) -> bool:
        return self in (MigrationPhase.COMPLETED, MigrationPhase.FAILED, MigrationPhase.CANCELLED)

    @property
    def libvirt_involved(self) -> bool:
        """The source's libvirtd may be migrating (or have migrated) the domain."""
        return MigrationPhase.MIGRATING <= self <= MigrationPhase.FINISHING


P = MigrationPhase
TRANSITIONS: dict[MigrationPhase, frozenset[MigrationPhase]] = {
    P.CHECKING: frozenset({P.PREPARED, P.FAILED}),
    P.PREPARED: frozenset({P.MIGRATING, P.FAILED}),
    # libvirt returned (FINISHING) or failed; a user cancelled; post-copy switch; Corral lost
    # the source.
    P.MIGRATING: frozenset({P.FINISHING, P.FAILED, P.ABORTING, P.POSTCOPY, P.UNCERTAIN}),
    # Post-copy cannot be aborted; a failure now leaves the VM paused on the destination.
    P.POSTCOPY: frozenset({P.FINISHING, P.FAILED, P.UNCERTAIN}),
    # The abort may come too late (it completed) or the migration may fail on its own.
    P.ABORTING: frozenset({P.CANCELLED, P.FINISHING, P.FAILED, P.UNCERTAIN}),
    P.UNCERTAIN: frozenset({P.FINISHING, P.FAILED, P.CANCELLED, P.UNCERTAIN}),
    # Corral lost between libvirt's success and the inventory's update: the taker looks again.
    P.FINISHING: frozenset({P.COMPLETED, P.UNCERTAIN}),
    P.COMPLETED: frozenset(),
    P.FAILED: frozenset(),
    P.CANCELLED: frozenset(),
}

Persist = Callable[[MigrationInfo], Awaitable[None]]


def phase_of(info: MigrationInfo) -> MigrationPhase:
    return MigrationPhase[info.phase.upper()]


class MigrationRecord:
    """The migration's state, persisted at every transition (``persist`` writes it into the
    task before the caller goes on: a step is on disk before the libvirt call it announces)."""

    def __init__(self, info: MigrationInfo, persist: Persist) -> None:
        self.info = info
        self._persist = persist

    @property
    def phase(self) -> MigrationPhase:
        return phase_of(self.info)

    async def advance(self, phase: MigrationPhase, note: str = "") -> None:
        current = self.phase
        if phase not in TRANSITIONS[current]:
            raise Conflict(
                f"migration of {self.info.vm} cannot go from {current.name} to {phase.name}"
            )
        self.info.phase = phase.name.lower()
        self.info.steps.append(
            MigrationStep(phase=self.info.phase, at=datetime.now(UTC), note=note)
        )
        await self._persist(self.info)

    async def fail(self, phase: MigrationPhase, error: str) -> None:
        self.info.error = error
        await self.advance(phase, error)

    def observe(self, stats: MigrationStats) -> None:
        """The newest job statistics (stored with the next write)."""
        self.info.stats = stats


def new_info(**fields: object) -> MigrationInfo:
    """A record in CHECKING with its first step."""
    now = datetime.now(UTC)
    return MigrationInfo.model_validate(
        {**fields, "phase": "checking", "steps": [{"phase": "checking", "at": now}]}
    )


class PostcopySwitch:
    """When to switch a migration that asked for post-copy: once pre-copy has made a few
    passes without getting the remaining bytes down (not converging), or after many passes.
    Fed one statistics reading at a time; pure."""

    def __init__(self, min_iteration: int = 2, patience: int = 3, max_iteration: int = 8) -> None:
        self.min_iteration = min_iteration
        self.patience = patience
        self.max_iteration = max_iteration
        self._best: int | None = None
        self._stalled = 0

    def should_switch(self, stats: MigrationStats) -> bool:
        iteration = stats.iteration or 0
        remaining = stats.data_remaining
        if iteration < self.min_iteration or remaining is None:
            return False
        if iteration >= self.max_iteration:
            return True
        if self._best is None or remaining < self._best * 0.9:
            self._best = remaining if self._best is None else min(self._best, remaining)
            self._stalled = 0
            return False
        self._stalled += 1
        return self._stalled >= self.patience
