"""Properties of every consolidation plan, on random small clusters (hypothesis).

A plan never overcommits memory or vCPUs, never breaks anti-affinity and never takes a host
over ``high``, after any single step; never powers down a host that still has VMs, or one
that nothing can switch off; keeps the
hosts in reserve; touches no host in maintenance; replays on the cluster it was made for; and
planning again on its result proposes nothing.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from corral.model.placement import ClusterState, HostMode, PolicySettings
from corral.placement import apply_plan, plan_consolidation, stale_reasons
from tests.unit.placement._clusters import (
    NOW,
    Samples,
    any_samples,
    clusters,
    empty_running,
    exact_samples,
    policy_settings,
    replay,
)

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_safe(cluster: ClusterState, knobs: PolicySettings, samples: Samples) -> None:
    note(f"cluster={cluster!r}\nsettings={knobs!r}")
    plan = plan_consolidation(cluster, samples, NOW, knobs)
    note(f"plan={plan!r}")
    seen = replay(cluster, plan)
    assert seen.problems == [], plan
    assert stale_reasons(plan, cluster) == []
    # The executor's own view of the result agrees with the checker's.
    after = apply_plan(cluster, plan)
    assert {v.name: v.host for v in after.vms} == seen.final_where
    # Hosts in maintenance keep their VMs and get none.
    for h in cluster.hosts:
        if h.mode is HostMode.MAINTENANCE:
            assert [m for m in plan.migrations if h.name in (m.source, m.target)] == []
    # The reserve: never fewer empty running hosts than configured (unless there were fewer
    # to begin with), and restored whenever a host in standby is left to restore it.
    mode = {h.name: h.mode for h in cluster.hosts}
    where = {v.name: v.host or "" for v in cluster.vms}
    before = empty_running(cluster, where, mode)
    after_count = empty_running(cluster, seen.final_where, seen.final_mode)
    assert after_count >= min(knobs.hosts_in_reserve, before)
    if any(m is HostMode.STANDBY for m in seen.final_mode.values()):
        assert after_count >= knobs.hosts_in_reserve
    # A host nothing can switch off is never put in standby.
    pinned = {h.name for h in cluster.hosts if not h.can_standby}
    assert pinned.isdisjoint(plan.standby), plan
    # Every migration is explained, and the power estimate is there.
    assert all(m.reason for m in plan.migrations)
    if not plan.is_empty:
        assert plan.reasons[-1].startswith("estimated power")


@PROPERTY
@given(st.data(), clusters(), policy_settings())
def test_plans_keep_every_limit_whatever_the_samples(
    data: st.DataObject, cluster: ClusterState, knobs: PolicySettings
) -> None:
    _check_safe(cluster, knobs, data.draw(any_samples(cluster)))


@PROPERTY
@given(clusters(), policy_settings())
def test_planning_again_on_the_result_proposes_nothing(
    cluster: ClusterState, knobs: PolicySettings
) -> None:
    samples = exact_samples(cluster)
    _check_safe(cluster, knobs, samples)
    plan = plan_consolidation(cluster, samples, NOW, knobs)
    after = apply_plan(cluster, plan)
    again = plan_consolidation(after, exact_samples(after), NOW, knobs)
    assert again.is_empty, (plan, again)
