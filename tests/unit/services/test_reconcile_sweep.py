"""The reconciler's periodic sweep: hosts in slices spread over the interval."""

from __future__ import annotations

import pytest

from corral.services.reconcile import sweep_slice


@pytest.mark.parametrize(
    ("hosts", "interval_s", "size", "tick_s"),
    [
        (500, 30.0, 17, 1.0),  # 30 ticks a second apart, never all 500 at once
        (1, 30.0, 1, 30.0),  # one host: one pass per interval, as before
        (3, 5.0, 1, 5.0 / 3),
        (10, 0.5, 10, 0.5),  # a short interval (tests): every host each tick
        (0, 30.0, 1, 30.0),
    ],
)
def test_a_sweep_visits_every_host_once_per_interval(
    hosts: int, interval_s: float, size: int, tick_s: float
) -> None:
    got_size, got_tick = sweep_slice(hosts, interval_s)
    assert (got_size, got_tick) == (size, pytest.approx(tick_s))
    ticks = -(-hosts // got_size) if hosts else 1
    assert ticks * got_tick <= interval_s + 1e-9
