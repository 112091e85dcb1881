"""The migration state machine: its transition table, the persisted record, the post-copy
switch policy and the progress line."""

from __future__ import annotations

import pytest

from corral.errors import Conflict
from corral.model.migration import MigrationInfo, MigrationRequest, MigrationStats
from corral.services.migrations.machine import (
    TRANSITIONS,
    MigrationPhase,
    MigrationRecord,
    PostcopySwitch,
    new_info,
)
from corral.services.migrations.migrate import fraction, progress_text

P = MigrationPhase


def _info() -> MigrationInfo:
    return new_info(
        vm="web1",
        uuid="u",
        source="h1",
        destination="h2",
        transport="tls",
        encrypted=True,
        request=MigrationRequest(to="h2"),
    )


def test_every_phase_has_its_transitions_and_final_phases_none() -> None:
    assert set(TRANSITIONS) == set(P)
    for phase, targets in TRANSITIONS.items():
        assert (targets == frozenset()) == phase.final, phase
    # Before MIGRATING nothing happened on a host; from there libvirt may have acted.
    assert [p for p in P if p.libvirt_involved] == [
        P.MIGRATING, P.POSTCOPY, P.ABORTING, P.UNCERTAIN, P.FINISHING,
    ]  # fmt: skip
    # An instance lost after libvirt's success, before the inventory's update: its taker
    # resumes the task from UNCERTAIN (it failed 'cannot go from FINISHING to UNCERTAIN' with
    # the VM moved, in bench/failover.py).
    assert P.UNCERTAIN in TRANSITIONS[P.FINISHING]
    # There is no way back from post-copy: it cannot be aborted.
    assert P.ABORTING not in TRANSITIONS[P.POSTCOPY]
    # Every phase reaches a final one.
    for start in P:
        seen, todo = set(), [start]
        while todo:
            phase = todo.pop()
            seen.add(phase)
            todo += [t for t in TRANSITIONS[phase] if t not in seen]
        assert any(p.final for p in seen), start


async def test_the_record_persists_every_step_and_refuses_illegal_moves() -> None:
    written: list[list[str]] = []

    async def persist(info: MigrationInfo) -> None:
        written.append([s.phase for s in info.steps])

    record = MigrationRecord(_info(), persist)
    await record.advance(P.PREPARED)
    await record.advance(P.MIGRATING, "libvirt migrates")
    with pytest.raises(Conflict, match="cannot go from MIGRATING to COMPLETED"):
        await record.advance(P.COMPLETED)
    await record.fail(P.FAILED, "boom")
    assert written == [
        ["checking", "prepared"],
        ["checking", "prepared", "migrating"],
        ["checking", "prepared", "migrating", "failed"],
    ]
    assert record.info.error == "boom" and record.info.steps[-1].note == "boom"
    assert record.phase is P.FAILED


def _stats(iteration: int, remaining: int) -> MigrationStats:
    return MigrationStats(iteration=iteration, data_remaining=remaining, data_total=1000)


def test_postcopy_switch_waits_for_pre_copy_to_stall() -> None:
    switch = PostcopySwitch(min_iteration=2, patience=3, max_iteration=8)
    assert not switch.should_switch(_stats(1, 500))  # the first pass always runs
    assert not switch.should_switch(_stats(2, 300))
    assert not switch.should_switch(_stats(3, 100))  # still converging
    assert not switch.should_switch(_stats(3, 100))
    assert not switch.should_switch(_stats(4, 95))
    assert switch.should_switch(_stats(4, 98))  # three readings without a 10 % gain


def test_postcopy_switch_after_many_passes() -> None:
    switch = PostcopySwitch(max_iteration=5)
    assert not switch.should_switch(_stats(4, 400))
    assert switch.should_switch(_stats(5, 10))


def test_progress_line_and_fraction() -> None:
    info = _info()
    assert progress_text(info) == "h1 → h2 over tls: starting"
    info.stats = MigrationStats(
        iteration=3,
        dirty_rate_bps=12 * 2**20,
        memory_bps=150 * 2**20,
        downtime_ms=80,
        data_total=1000,
        data_remaining=250,
    )
    assert progress_text(info) == (
        "h1 → h2 over tls: pass 3, dirtied 12.0 MiB/s, sent 150.0 MiB/s, expected downtime 80 ms"
    )
    assert fraction(info.stats) == 0.75
    assert fraction(MigrationStats(data_total=1000, data_remaining=0)) == 0.99
    info.phase = "postcopy"
    assert "post-copy, the VM runs on h2" in progress_text(info)
