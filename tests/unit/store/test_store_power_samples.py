"""Utilisation samples: raw for an hour, then 1-minute means (per host, per VM) for a day,
then gone; and the driver row keeps the sealed secret apart from the settings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from corral import store as st
from corral.model.power import HostSample, VmSample
from corral.store import Store
from corral.store.coltypes import utcnow


def test_raw_samples_fold_into_minute_means_after_an_hour_and_go_after_a_day(
    store: Store,
) -> None:
    now = utcnow().replace(second=30, microsecond=0)
    two_hours = (now - timedelta(hours=2)).replace(second=0)
    old = [
        HostSample(host="h1", at=two_hours + timedelta(seconds=10 * i), cpu=cpu,
                   memory_used_mib=1000 + 100 * i, memory_total_mib=8192)
        for i, cpu in enumerate((0.1, 0.2, 0.3, 0.6))
    ]  # fmt: skip
    fresh = HostSample(
        host="h1", at=now - timedelta(minutes=5), cpu=0.9, memory_used_mib=1, memory_total_mib=8192
    )
    ancient = HostSample(
        host="h1", at=now - timedelta(hours=25), cpu=0.5, memory_used_mib=1, memory_total_mib=8192
    )
    vms = [
        VmSample(vm="web1", host="h1", at=two_hours + timedelta(seconds=20 * i), cpu=c,
                 memory_mib=256)
        for i, c in enumerate((0.2, 0.4))
    ]  # fmt: skip
    with store.session() as s:
        st.add_samples(s, [*old, fresh, ancient], vms)
    with store.session() as s:
        folded, gone = st.downsample(s, now)
    # Every raw row older than an hour is folded (the day-old one too); the day-old mean goes.
    assert (folded, gone) == (len(old) + 1 + len(vms), 1)
    with store.session() as s:
        hosts = st.host_samples(s, now - timedelta(days=2))
        vm_rows = st.vm_samples(s, now - timedelta(days=2))
    [minute, raw] = hosts
    assert minute.minute is True and minute.at == two_hours
    assert minute.cpu == pytest.approx(0.3) and minute.memory_used_mib == 1150
    assert raw.minute is False and raw.cpu == 0.9  # the last hour stays raw
    [vm_minute] = vm_rows
    assert vm_minute.minute and vm_minute.cpu == pytest.approx(0.3)
    # Folding again changes nothing: minute rows are never folded twice.
    with store.session() as s:
        assert st.downsample(s, now) == (0, 0)


def test_host_cpu_means_over_a_window(store: Store) -> None:
    """Placement's load of each host: the mean of its samples since the window's start, each
    capped at 1 (a host busier than its CPUs is full), standby samples not counted."""
    now = utcnow()

    def sample(host: str, ago_s: int, cpu: float, standby: bool = False) -> HostSample:
        at = now - timedelta(seconds=ago_s)
        return HostSample(host=host, at=at, cpu=cpu, memory_used_mib=1, memory_total_mib=8,
                          standby=standby)  # fmt: skip

    with store.session() as s:
        st.add_samples(
            s,
            [sample("h1", 600, 0.9), sample("h1", 60, 0.2), sample("h1", 30, 1.4),
             sample("h2", 50, 0.5), sample("h2", 40, 0.0, standby=True),
             sample("h3", 900, 0.7)],
            [],
        )  # fmt: skip
    with store.reading() as s:
        means = st.host_cpu_means(s, now - timedelta(seconds=300))
    assert means == {"h1": pytest.approx(0.6), "h2": pytest.approx(0.5)}
