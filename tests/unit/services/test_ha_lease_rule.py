"""When a stale storage heartbeat proves a silent host's VMs may run elsewhere, and when it
proves nothing (a full test run once restarted a VM that still ran: its host's beater had
stopped before the host was cut off)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from corral.hostagent.haops import _write_beat
from corral.services.ha.heartbeats import DETECT_S, MARGIN_S, Beat, Heartbeats, judge

FENCE = 20.0
STALE = FENCE + MARGIN_S + 1


def _judge(beat: Beat | None, heard: float | None, now: float = 1000.0) -> tuple[bool, str]:
    lease = judge(beat, heard, now, FENCE, "never seen")
    return lease.expired, lease.reason


def test_a_beat_that_ran_until_the_host_went_silent_and_then_stopped_is_an_expired_lease() -> None:
    # The power cut: beat and libvirt stop together; keep-alive notices 15-20 s later.
    moved = 1000.0 - STALE
    expired, reason = _judge(Beat(7, moved, moving=True), heard=moved + 18)
    assert expired, reason
    assert "leases expired" in reason


def test_a_beat_still_moving_means_alive_on_storage() -> None:
    expired, reason = _judge(Beat(7, 995.0, moving=True), heard=980.0)
    assert not expired
    assert "alive on storage" in reason


def test_a_beat_never_seen_proves_nothing() -> None:
    assert _judge(None, heard=900.0) == (False, "never seen")


def test_a_beat_not_seen_moving_since_the_host_came_back_proves_nothing() -> None:
    # The beater died with an earlier power cut and was not started again before this cut.
    moved = 1000.0 - STALE
    expired, reason = _judge(Beat(7, moved, moving=False), heard=moved + 1)
    assert not expired
    assert "not seen moving since it last came back" in reason


def test_a_beat_that_stopped_long_before_the_host_went_silent_proves_nothing() -> None:
    # Its beater writes elsewhere (the domain changed) or was killed while the host lived.
    moved = 1000.0 - 120
    expired, reason = _judge(Beat(7, moved, moving=True), heard=moved + DETECT_S + 1)
    assert not expired
    assert "stopped" in reason and "before Corral last heard it" in reason


def test_an_instance_that_never_heard_the_host_cannot_use_its_lease() -> None:
    expired, reason = _judge(Beat(7, 1000.0 - STALE, moving=True), heard=None)
    assert not expired
    assert "never heard it answer" in reason


class _Beats(Heartbeats):
    """Heartbeats read from a directory the test names (the database picks it in Corral)."""

    def __init__(self) -> None:
        super().__init__(None, None, None, fence_after_s=FENCE)  # type: ignore[arg-type]
        self.where: str | None = None

    async def directory(self) -> str | None:
        return self.where


def _beat(directory: Path, host: str, seq: int) -> None:
    _write_beat({"dir": str(directory), "host": host}, seq)


def test_a_beat_counts_only_once_seen_moving_in_the_directory_read_now(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    beats = _Beats()
    beats.where = str(old)
    _beat(old, "h2", 1)
    asyncio.run(beats.observe())
    assert beats.lease("h2", time.monotonic()).reason.startswith("its storage heartbeat moved")
    _beat(old, "h2", 2)
    asyncio.run(beats.observe())
    assert beats._beats["h2"].moving

    # The domain changed: h2's beater still writes the old directory. Nothing known of h2.
    beats.where = str(new)
    asyncio.run(beats.observe())
    assert "h2" not in beats._beats
    _beat(new, "h2", 3)
    asyncio.run(beats.observe())
    assert not beats._beats["h2"].moving  # seen once: not yet moving
    _beat(new, "h2", 4)
    asyncio.run(beats.observe())
    assert beats._beats["h2"].moving

    # h2 answers again after a silence: its beat must move again before it proves anything.
    beats.came_back("h2")
    assert not beats._beats["h2"].moving
