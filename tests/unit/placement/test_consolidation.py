"""Consolidation plans on hand-made clusters: emptying, relief, waking, reserve, reasons."""

from __future__ import annotations

from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.model.placement import (
    ClusterState,
    HostMode,
    PlacementPolicy,
    PolicySettings,
    UtilisationSample,
)
from corral.placement import consolidation, plan_consolidation
from tests.unit.placement._clusters import (
    NOW,
    any_samples,
    clusters,
    flat,
    host,
    policy_settings,
    replay,
    vm,
)

SPREAD = PolicySettings(policy=PlacementPolicy.EVENLY_DISTRIBUTED)


def _moves(plan: object) -> list[tuple[str, str, str]]:
    return [(m.vm, m.source, m.target) for m in plan.migrations]  # type: ignore[attr-defined]


def _quiet_pair() -> ClusterState:
    """h1 runs three small VMs, h3 two: everything fits on h1."""
    return ClusterState(
        hosts=(host("h1"), host("h3")),
        vms=(
            *(vm(f"a{i}", "h1", cpu_utilisation=0.1) for i in range(3)),
            *(vm(f"b{i}", "h3", cpu_utilisation=0.2) for i in range(2)),
        ),
    )


def test_an_under_used_host_is_emptied_then_put_in_standby() -> None:
    knobs = PolicySettings(sustained_minutes=10)
    samples = {"h1": flat(0.15, minutes=10), "h3": flat(0.12, minutes=10)}
    plan = plan_consolidation(_quiet_pair(), samples, NOW, knobs)
    assert _moves(plan) == [("b0", "h3", "h1"), ("b1", "h3", "h1")]
    assert (plan.wake, plan.standby) == ((), ("h3",))
    assert [m.reason for m in plan.migrations] == ["empty h3", "empty h3"]
    # 100 W + 150 W x utilisation per running host, 10 W in standby.
    assert (plan.watts_before, plan.watts_after) == (213.125, 123.125)
    assert plan.reasons == (
        "h3 at 12 % CPU for 10 min < low 20 %: move its 2 VMs, then standby",
        "estimated power 213 W -> 123 W",
    )


def test_the_host_with_more_vms_is_kept_fewer_migrations() -> None:
    cluster = ClusterState(
        hosts=(host("h1"), host("h2")),
        vms=(
            vm("big", "h1", memory_mib=2048),
            *(vm(f"s{i}", "h2", memory_mib=512) for i in range(3)),
        ),
    )
    plan = plan_consolidation(cluster, {"h1": flat(0.05), "h2": flat(0.05)}, NOW)
    assert _moves(plan) == [("big", "h1", "h2")]
    assert plan.standby == ("h1",)


def test_a_host_nothing_can_switch_off_receives_vms_but_is_never_emptied() -> None:
    """Three idle hosts, only h3 can be switched off: h3's VM moves to one of the others,
    which keep theirs even after receiving it (a re-estimated low load is no reason to empty
    a host that cannot go to standby)."""
    cluster = ClusterState(
        hosts=(host("h1", can_standby=False), host("h2", can_standby=False), host("h3")),
        vms=(vm("a", "h1"), vm("b", "h1"), vm("c", "h2"), vm("d", "h3")),
    )
    samples = {h: flat(0.02) for h in ("h1", "h2", "h3")}
    plan = plan_consolidation(cluster, samples, NOW)
    assert [(v, s) for v, s, _ in _moves(plan)] == [("d", "h3")]
    assert plan.standby == ("h3",)
    # An empty host that cannot be switched off stays up.
    lone = ClusterState(hosts=(host("h1"), host("h2", can_standby=False)), vms=(vm("a", "h1"),))
    assert plan_consolidation(lone, {"h1": flat(0.5), "h2": flat(0.0)}, NOW).is_empty


def test_nothing_happens_without_a_sustained_lull() -> None:
    spiky = [*flat(0.05), UtilisationSample(at=NOW, cpu=0.5)]
    short = [UtilisationSample(at=NOW, cpu=0.01)]
    for samples in ({"h1": spiky, "h3": spiky}, {"h1": short, "h3": short}, {}):
        assert plan_consolidation(_quiet_pair(), samples, NOW).is_empty


def test_anti_affinity_keeps_two_replicas_apart() -> None:
    cluster = ClusterState(
        hosts=(host("h1"), host("h2")),
        vms=(
            vm("web1", "h1", anti_affinity_group="web"),
            vm("web2", "h2", anti_affinity_group="web"),
        ),
    )
    assert plan_consolidation(cluster, {"h1": flat(0.01), "h2": flat(0.01)}, NOW).is_empty


def test_memory_is_never_overcommitted() -> None:
    cluster = ClusterState(
        hosts=(host("h1"), host("h2")),
        vms=(vm("a", "h1", memory_mib=5000), vm("b", "h2", memory_mib=4000)),
    )
    samples = {"h1": flat(0.01), "h2": flat(0.01)}
    assert plan_consolidation(cluster, samples, NOW).is_empty
    roomy = PolicySettings(memory_overcommit=1.2)
    assert _moves(plan_consolidation(cluster, samples, NOW, roomy)) == [("b", "h2", "h1")]


def _overloaded() -> ClusterState:
    """h1 at 81 %: busy1 (4 CPUs' worth), busy2 (2), small (0.5). h2 is quiet."""
    return ClusterState(
        hosts=(host("h1"), host("h2"), host("h3", mode=HostMode.STANDBY)),
        vms=(
            vm("busy1", "h1", vcpus=4, cpu_utilisation=1.0),
            vm("busy2", "h1", vcpus=2, cpu_utilisation=1.0),
            vm("small", "h1", vcpus=1, cpu_utilisation=0.5),
            vm("idle", "h2", cpu_utilisation=0.1),
        ),
    )


def test_an_over_used_host_sheds_its_busiest_vm_onto_a_running_host() -> None:
    samples = {"h1": flat(0.81), "h2": flat(0.30)}
    plan = plan_consolidation(_overloaded(), samples, NOW)
    assert _moves(plan) == [("busy1", "h1", "h2")]  # one migration brings h1 to 31 %
    assert (plan.wake, plan.standby) == ((), ())
    assert plan.reasons[0] == "h1 at 81 % CPU for 2 min > high 75 %: move 1 VM away (busy1)"
    assert plan.migrations[0].reason == "relieve h1"


def test_when_no_running_host_has_room_a_host_in_standby_is_woken() -> None:
    full = _overloaded().model_copy(
        update={"vms": (*_overloaded().vms[:3], vm("idle", "h2", memory_mib=8192))}
    )
    plan = plan_consolidation(full, {"h1": flat(0.81), "h2": flat(0.30)}, NOW)
    assert plan.wake == ("h3",)
    assert _moves(plan) == [("busy1", "h1", "h3")]
    assert plan.reasons[:2] == (
        "wake h3: no running host can take busy1 (1024 MiB, 4 vCPUs) from over-used h1 "
        "within the limits",
        "h1 at 81 % CPU for 2 min > high 75 %: move 1 VM away (busy1)",
    )
    assert plan.watts_after > plan.watts_before  # waking costs power; the overload was worse


def test_an_overload_nobody_can_take_blocks_any_standby() -> None:
    cluster = ClusterState(
        hosts=(host("h1"), host("h2", cpus=2), host("h3", cpus=2)),
        vms=(
            vm("busy1", "h1", vcpus=4, cpu_utilisation=1.0),
            vm("busy2", "h1", vcpus=4, cpu_utilisation=0.8),
            vm("small", "h1", vcpus=1, cpu_utilisation=0.5),
            vm("idle", "h2", cpu_utilisation=0.1),
        ),
    )
    samples = {"h1": flat(0.96), "h2": flat(0.05), "h3": flat(0.0)}
    plan = plan_consolidation(cluster, samples, NOW)
    assert _moves(plan) == [("small", "h1", "h2")]  # it helps, even if not enough
    assert plan.standby == ()  # h3 is idle, but the cluster is short of CPU
    assert any(
        r.startswith("h1 at 96 % CPU") and "no host can take enough" in r for r in plan.reasons
    )


def test_an_emptied_host_is_kept_running_as_the_reserve() -> None:
    cluster = ClusterState(
        hosts=(host("h1"), host("h2"), host("h3")),
        vms=(
            *(vm(f"a{i}", "h1") for i in range(3)),
            *(vm(f"b{i}", "h2") for i in range(2)),
            vm("c0", "h3"),
        ),
    )
    samples = {h: flat(0.05) for h in ("h1", "h2", "h3")}
    plan = plan_consolidation(cluster, samples, NOW, PolicySettings(hosts_in_reserve=1))
    assert {m.target for m in plan.migrations} == {"h1"}
    assert plan.standby == ("h3",)
    assert plan.reasons[:2] == (
        "h2 at 5 % CPU for 2 min < low 20 %: move its 2 VMs, then keep it running empty "
        "(hosts in reserve: 1)",
        "h3 at 5 % CPU for 2 min < low 20 %: move its 1 VM, then standby",
    )


def test_a_missing_reserve_is_restored_by_waking_a_host() -> None:
    cluster = ClusterState(
        hosts=(host("h1"), host("h2", mode=HostMode.STANDBY)), vms=(vm("a", "h1"),)
    )
    plan = plan_consolidation(cluster, {"h1": flat(0.5)}, NOW, PolicySettings(hosts_in_reserve=1))
    assert (plan.wake, plan.migrations, plan.standby) == (("h2",), (), ())
    assert plan.reasons[0] == "wake h2 to keep 1 empty host(s) in reserve"


def test_an_idle_empty_host_goes_to_standby() -> None:
    cluster = ClusterState(hosts=(host("h1"), host("h2")), vms=(vm("a", "h1"),))
    plan = plan_consolidation(cluster, {"h1": flat(0.5), "h2": flat(0.0)}, NOW)
    assert (plan.migrations, plan.standby) == ((), ("h2",))
    assert plan.reasons[0] == "h2 runs no VM and is at 0 % CPU for 2 min < low 20 %: standby"


def test_evenly_distributed_relieves_but_never_powers_down() -> None:
    samples = {"h1": flat(0.15), "h3": flat(0.12)}
    assert plan_consolidation(_quiet_pair(), samples, NOW, SPREAD).is_empty
    plan = plan_consolidation(_overloaded(), {"h1": flat(0.81), "h2": flat(0.3)}, NOW, SPREAD)
    assert _moves(plan) == [("busy1", "h1", "h2")]


def test_hosts_in_maintenance_are_left_alone() -> None:
    cluster = ClusterState(
        hosts=(host("h1"), host("h2", mode=HostMode.MAINTENANCE)),
        vms=(vm("a", "h1"), vm("b", "h2")),
    )
    assert plan_consolidation(cluster, {"h1": flat(0.01), "h2": flat(0.01)}, NOW).is_empty


@settings(max_examples=100, deadline=None)
@given(st.data(), clusters(), policy_settings())
def test_the_journal_fallback_is_feasible_too(
    data: st.DataObject, cluster: ClusterState, knobs: PolicySettings
) -> None:
    """When no direct order is found, the plan replays the planner's own steps: check them."""
    samples = data.draw(any_samples(cluster))
    direct = plan_consolidation(cluster, samples, NOW, knobs)
    with mock.patch.object(consolidation, "feasible_order", return_value=None):
        journal = plan_consolidation(cluster, samples, NOW, knobs)
    assert replay(cluster, journal).problems == []
    assert replay(cluster, journal).final_where == replay(cluster, direct).final_where
    assert len(journal.migrations) >= len(direct.migrations)
