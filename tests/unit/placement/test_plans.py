"""apply_plan and plan_is_stale: what the executor relies on before and after running a plan."""

from __future__ import annotations

import pytest

from corral.errors import InvalidRequest
from corral.model.placement import ClusterState, HostMode, Migration, Plan, PolicySettings
from corral.placement import apply_plan, plan_consolidation, plan_is_stale, stale_reasons
from tests.unit.placement._clusters import NOW, flat, host, vm


def _cluster() -> ClusterState:
    return ClusterState(
        hosts=(host("h1"), host("h2"), host("h3", mode=HostMode.STANDBY)),
        vms=(*(vm(f"a{i}", "h1") for i in range(3)), vm("b0", "h2", anti_affinity_group="g")),
    )


def _plan() -> Plan:
    plan = plan_consolidation(_cluster(), {"h1": flat(0.05), "h2": flat(0.05)}, NOW)
    assert [(m.vm, m.target) for m in plan.migrations] == [("b0", "h1")]
    assert plan.standby == ("h2",)
    return plan


def test_apply_plan_moves_vms_and_changes_host_modes() -> None:
    after = apply_plan(_cluster(), _plan())
    assert {v.name: v.host for v in after.vms} == {"a0": "h1", "a1": "h1", "a2": "h1", "b0": "h1"}
    assert [h.mode for h in after.hosts] == [HostMode.CONNECTED, HostMode.STANDBY, HostMode.STANDBY]
    assert apply_plan(_cluster(), Plan(settings=PolicySettings())) == _cluster()


def test_apply_plan_refuses_a_plan_that_does_not_match() -> None:
    settings = PolicySettings()
    move = Migration(vm="a0", source="h2", target="h1", memory_mib=1024, vcpus=1, reason="")
    with pytest.raises(InvalidRequest, match="a0 from h2: it is not running there"):
        apply_plan(_cluster(), Plan(settings=settings, migrations=(move,)))
    with pytest.raises(InvalidRequest, match="cannot wake h1"):
        apply_plan(_cluster(), Plan(settings=settings, wake=("h1",)))
    with pytest.raises(InvalidRequest, match="cannot put h1 in standby"):
        apply_plan(_cluster(), Plan(settings=settings, standby=("h1",)))
    to_sleeping = move.model_copy(update={"source": "h1", "target": "h3"})
    with pytest.raises(InvalidRequest, match="to h3: not a connected host"):
        apply_plan(_cluster(), Plan(settings=settings, migrations=(to_sleeping,)))


def test_a_fresh_plan_is_not_stale() -> None:
    assert not plan_is_stale(_plan(), _cluster())


def _changed(*vms: object, hosts: tuple[object, ...] | None = None) -> ClusterState:
    return ClusterState(hosts=hosts or _cluster().hosts, vms=vms)  # type: ignore[arg-type]


def test_a_plan_goes_stale_when_the_cluster_moves_under_it() -> None:
    plan, a = _plan(), [vm(f"a{i}", "h1") for i in range(3)]
    cases = {
        "VM b0 no longer runs": _changed(*a),
        "VM b0 now runs on h1, not h2": _changed(*a, vm("b0", "h1")),
        "VM b0 now has 2048 MiB and 1 vCPUs, not 1024 MiB and 1 vCPUs": _changed(
            *a, vm("b0", "h2", memory_mib=2048)
        ),
        "moving b0 to h1: h1 has 512 MiB free": _changed(
            *a, vm("b0", "h2"), vm("fat", "h1", memory_mib=4608)
        ),
        "moving b0 to h1: h1 already runs g2 of anti-affinity group g": _changed(
            *a, vm("b0", "h2", anti_affinity_group="g"), vm("g2", "h1", anti_affinity_group="g")
        ),
        "moving b0 to h1: h1 would reach 88 % CPU > high 75 %": _changed(
            *a, vm("b0", "h2"), vm("hot", "h1", vcpus=7, cpu_utilisation=1.0)
        ),
        "h2 would still run late": _changed(*a, vm("b0", "h2"), vm("late", "h2")),
    }
    for reason, now in cases.items():
        assert reason in stale_reasons(plan, now), reason
        assert plan_is_stale(plan, now)


def test_a_plan_goes_stale_when_hosts_change_mode() -> None:
    plan = _plan()
    hosts = (host("h1"), host("h2", mode=HostMode.MAINTENANCE), host("h3", mode=HostMode.STANDBY))
    now = _changed(*_cluster().vms, hosts=hosts)
    assert stale_reasons(plan, now) == ["h2 is no longer a connected host"]
    woken = Plan(settings=PolicySettings(), wake=("h3",))
    awake = _changed(hosts=(host("h1"), host("h2"), host("h3")))
    assert stale_reasons(woken, awake) == ["h3 is no longer a host in standby"]
