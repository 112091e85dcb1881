"""Sustained load: is a host under- or over-used for the whole window, or only for a moment?

Planning acts on *sustained* conditions only (oVirt's CpuOverCommitDurationMinutes): a host
counts as under-used when every sample of the last ``sustained_minutes`` is below
``low_utilisation``, and over-used when every one is above ``high_utilisation``. A spike or a
lull shorter than the window changes nothing.

The samples must cover the window: at least one taken at or before its start (the host has been
measured long enough) and one after it (the host still reports). Otherwise the load is
``UNKNOWN`` and the planner leaves the host as it is (it may still receive VMs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from corral.model.placement import PolicySettings, UtilisationSample


class LoadBand(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SustainedLoad:
    """A host's load over the window.

    ``level`` is the figure that proves the band: the highest sample for ``LOW`` (every sample
    was at most this), the lowest for ``HIGH``, the newest for ``NORMAL``; None for ``UNKNOWN``.
    ``estimated`` marks a load the planner derived from VM demands after moves it planned.
    """

    band: LoadBand
    level: float | None
    minutes: float
    estimated: bool = False


def band_of(utilisation: float, settings: PolicySettings) -> LoadBand:
    """The band of one utilisation figure (the same comparison for samples and estimates)."""
    if utilisation < settings.low_utilisation:
        return LoadBand.LOW
    if utilisation > settings.high_utilisation:
        return LoadBand.HIGH
    return LoadBand.NORMAL


def estimated_load(utilisation: float, settings: PolicySettings) -> SustainedLoad:
    """The load the planner expects of a host after planned moves."""
    band = band_of(utilisation, settings)
    return SustainedLoad(band, utilisation, settings.sustained_minutes, estimated=True)


def sustained_load(
    samples: Sequence[UtilisationSample], now: datetime, settings: PolicySettings
) -> SustainedLoad:
    """Classify one host's samples (any order) over the window ending at ``now``."""
    minutes = settings.sustained_minutes
    start = now - timedelta(minutes=minutes)
    reaches_back = any(s.at <= start for s in samples)
    window = [s.cpu for s in samples if start <= s.at <= now]
    if not reaches_back or not any(start < s.at <= now for s in samples):
        return SustainedLoad(LoadBand.UNKNOWN, None, minutes)
    if all(band_of(cpu, settings) is LoadBand.LOW for cpu in window):
        return SustainedLoad(LoadBand.LOW, max(window), minutes)
    if all(band_of(cpu, settings) is LoadBand.HIGH for cpu in window):
        return SustainedLoad(LoadBand.HIGH, min(window), minutes)
    newest = max((s for s in samples if s.at <= now), key=lambda s: s.at)
    return SustainedLoad(LoadBand.NORMAL, newest.cpu, minutes)


def sustained_loads(
    hosts: Sequence[str],
    samples: Mapping[str, Sequence[UtilisationSample]],
    now: datetime,
    settings: PolicySettings,
) -> dict[str, SustainedLoad]:
    """``sustained_load`` for every host; a host without samples is ``UNKNOWN``."""
    return {host: sustained_load(samples.get(host, ()), now, settings) for host in hosts}
