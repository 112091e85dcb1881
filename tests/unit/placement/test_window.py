"""The window logic: only a condition that lasts the whole window counts."""

from __future__ import annotations

from datetime import timedelta

from corral.model.placement import PolicySettings, UtilisationSample
from corral.placement import LoadBand, sustained_load
from corral.placement.window import sustained_loads
from tests.unit.placement._clusters import NOW, flat

KNOBS = PolicySettings(sustained_minutes=10)


def _series(*points: tuple[float, float]) -> list[UtilisationSample]:
    """Samples from (minutes before now, cpu) pairs."""
    return [UtilisationSample(at=NOW - timedelta(minutes=m), cpu=c) for m, c in points]


def test_every_sample_below_low_is_a_sustained_lull() -> None:
    load = sustained_load(_series((10, 0.05), (5, 0.12), (0, 0.08)), NOW, KNOBS)
    assert (load.band, load.level, load.minutes) == (LoadBand.LOW, 0.12, 10)


def test_one_busy_sample_in_the_window_breaks_the_lull() -> None:
    load = sustained_load(_series((10, 0.05), (5, 0.30), (0, 0.08)), NOW, KNOBS)
    assert (load.band, load.level) == (LoadBand.NORMAL, 0.08)


def test_samples_before_the_window_only_prove_history() -> None:
    load = sustained_load(_series((30, 0.95), (10, 0.05), (0, 0.05)), NOW, KNOBS)
    assert load.band is LoadBand.LOW


def test_every_sample_above_high_is_a_sustained_overload() -> None:
    load = sustained_load(_series((10, 0.9), (5, 0.8), (0, 0.95)), NOW, KNOBS)
    assert (load.band, load.level) == (LoadBand.HIGH, 0.8)


def test_a_short_spike_is_not_an_overload() -> None:
    load = sustained_load(_series((10, 0.5), (1, 0.99), (0, 0.99)), NOW, KNOBS)
    assert load.band is LoadBand.NORMAL


def test_a_history_shorter_than_the_window_is_unknown() -> None:
    load = sustained_load(_series((9, 0.01), (0, 0.01)), NOW, KNOBS)
    assert (load.band, load.level) == (LoadBand.UNKNOWN, None)


def test_a_host_that_stopped_reporting_is_unknown() -> None:
    assert sustained_load(_series((20, 0.01), (10, 0.01)), NOW, KNOBS).band is LoadBand.UNKNOWN


def test_samples_after_now_are_ignored() -> None:
    series = [
        *_series((10, 0.05), (0, 0.05)),
        UtilisationSample(at=NOW + timedelta(minutes=1), cpu=1.0),
    ]
    assert sustained_load(series, NOW, KNOBS).band is LoadBand.LOW


def test_order_of_samples_does_not_matter() -> None:
    series = _series((0, 0.9), (10, 0.9), (5, 0.85))
    assert sustained_load(series, NOW, KNOBS) == sustained_load(series[::-1], NOW, KNOBS)


def test_thresholds_are_strict() -> None:
    knobs = PolicySettings(low_utilisation=0.2, high_utilisation=0.75)
    assert sustained_load(flat(0.2), NOW, knobs).band is LoadBand.NORMAL
    assert sustained_load(flat(0.75), NOW, knobs).band is LoadBand.NORMAL
    assert sustained_load(flat(0.19), NOW, knobs).band is LoadBand.LOW


def test_hosts_without_samples_are_unknown() -> None:
    loads = sustained_loads(["h1", "h2"], {"h1": flat(0.1)}, NOW, PolicySettings())
    assert (loads["h1"].band, loads["h2"].band) == (LoadBand.LOW, LoadBand.UNKNOWN)
