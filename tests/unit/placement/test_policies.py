"""Initial placement: power_saving packs, evenly_distributed spreads, excluded hosts never win."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.errors import InvalidRequest, NoHostFits
from corral.model.placement import (
    ClusterState,
    HostMode,
    PlacementPolicy,
    PolicySettings,
    VmDemand,
)
from corral.placement import Constraint, choose_host
from tests.unit.placement._clusters import clusters, host, policy_settings, vm

PACK = PolicySettings(policy=PlacementPolicy.POWER_SAVING)
SPREAD = PolicySettings(policy=PlacementPolicy.EVENLY_DISTRIBUTED)


def _three_hosts() -> ClusterState:
    """h1: half its memory and a quarter of its CPUs used; h2: little used; h3: empty."""
    return ClusterState(
        hosts=(host("h1"), host("h2"), host("h3")),
        vms=(
            vm("a", "h1", memory_mib=4096, vcpus=4, cpu_utilisation=0.5),
            vm("b", "h2", memory_mib=1024, vcpus=1, cpu_utilisation=0.1),
        ),
    )


def test_power_saving_packs_onto_the_fullest_host_that_fits() -> None:
    new = VmDemand(name="new", vcpus=1, memory_mib=2048)
    assert choose_host(new, _three_hosts(), PACK) == "h1"


def test_evenly_distributed_spreads_onto_the_least_loaded_host() -> None:
    new = VmDemand(name="new", vcpus=1, memory_mib=2048)
    assert choose_host(new, _three_hosts(), SPREAD) == "h3"


def test_power_saving_avoids_taking_a_host_over_high() -> None:
    cluster = ClusterState(
        hosts=(host("h1"), host("h2")),
        vms=(
            vm("busy", "h1", memory_mib=6144, vcpus=8, cpu_utilisation=0.7),
            vm("idle", "h2", memory_mib=1024),
        ),
    )
    hungry = VmDemand(name="new", vcpus=1, memory_mib=1024, cpu_utilisation=1.0)
    assert choose_host(hungry, cluster, PACK) == "h2"  # h1 would reach 82 % > 75 %
    quiet = VmDemand(name="new", vcpus=1, memory_mib=1024)
    assert choose_host(quiet, cluster, PACK) == "h1"


def test_a_host_over_high_is_still_better_than_no_host() -> None:
    cluster = ClusterState(
        hosts=(host("h1"),), vms=(vm("busy", "h1", vcpus=8, cpu_utilisation=0.9),)
    )
    assert choose_host(VmDemand(name="new", vcpus=1, memory_mib=512), cluster) == "h1"


def test_no_host_fits_names_each_hosts_obstacle() -> None:
    cluster = ClusterState(
        hosts=(
            host("h1", memory_mib=2048),
            host("h2", mode=HostMode.MAINTENANCE),
            host("h3"),
        ),
        vms=(vm("x", "h1", memory_mib=1024), vm("web2", "h3", anti_affinity_group="web")),
    )
    web1 = VmDemand(name="web1", vcpus=2, memory_mib=2048, anti_affinity_group="web")
    with pytest.raises(NoHostFits) as caught:
        choose_host(web1, cluster)
    assert caught.value.message == (
        "no host can take VM web1 (2 vCPUs, memory 2 GiB): h1 has 1 GiB free, "
        "h2 is in maintenance, h3 already runs web2 of anti-affinity group web. The placement "
        "policy keeps memory within memory_overcommit (1 times a host's memory): name a host "
        "for the VM to place it there regardless (that host's own limits still apply), or "
        "raise that cluster setting (`corral cluster set`)"
    )
    assert caught.value.vm == "web1"
    assert [(r.host, r.constraint) for r in caught.value.refusals] == [
        ("h1", Constraint.MEMORY),
        ("h2", Constraint.MAINTENANCE),
        ("h3", Constraint.ANTI_AFFINITY),
    ]


def test_standby_and_vcpu_limits_are_reported() -> None:
    cluster = ClusterState(
        hosts=(host("h1", cpus=2), host("h2", mode=HostMode.STANDBY)),
        vms=(vm("x", "h1", vcpus=7),),
    )
    with pytest.raises(NoHostFits, match=r"h1 has 1 of 8 vCPUs free, h2 is in standby\. "):
        choose_host(VmDemand(name="new", vcpus=2, memory_mib=512), cluster)


def test_memory_overcommit_ratio_is_the_limit() -> None:
    cluster = ClusterState(hosts=(host("h1", memory_mib=4096),), vms=(vm("x", "h1", 3072),))
    new = VmDemand(name="new", vcpus=1, memory_mib=2048)
    with pytest.raises(NoHostFits, match="h1 has 1 GiB free"):
        choose_host(new, cluster)
    assert choose_host(new, cluster, PolicySettings(memory_overcommit=1.5)) == "h1"


def test_a_vm_larger_than_every_host_is_told_the_largest_host_and_the_most_free() -> None:
    """No setting and no choice of host helps: no overcommit advice, and the number the user
    typed, not one with QEMU's share added."""
    cluster = ClusterState(
        hosts=(
            host("h1", memory_mib=8192),
            host("h2", memory_mib=16384, mode=HostMode.MAINTENANCE),
            host("h3", memory_mib=8192),
        ),
        vms=(vm("x", "h1", memory_mib=4096),),
    )
    huge = VmDemand(name="big", vcpus=1, memory_mib=1536 * 1024 + 64, overhead_mib=64)
    with pytest.raises(NoHostFits) as caught:
        choose_host(huge, cluster, PolicySettings(memory_overcommit=1.5))
    assert caught.value.message == (
        "no host can take VM big: it asks for memory 1.5 TiB, more than any host has (the "
        "largest, h2, has 16 GiB); the most free on any host is 12 GiB, on h3: ask for less "
        "memory"
    )


def test_a_refusal_names_qemus_share_apart() -> None:
    cluster = ClusterState(hosts=(host("h1", memory_mib=2048),), vms=(vm("x", "h1", 1536),))
    new = VmDemand(name="new", vcpus=1, memory_mib=512 + 64, overhead_mib=64)
    with pytest.raises(NoHostFits, match=r"VM new \(1 vCPU, memory 512 MiB \+ 64 MiB for QEMU\)"):
        choose_host(new, cluster)


def test_hosts_lacking_the_vms_images_are_never_chosen() -> None:
    new = VmDemand(name="new", vcpus=1, memory_mib=2048)
    lacking = {"h1": "ISO image 'x.iso'"}
    assert choose_host(new, _three_hosts(), PACK, lacking=lacking) == "h2"
    everywhere = {h: "ISO image 'x.iso'" for h in ("h1", "h2", "h3")}
    with pytest.raises(NoHostFits) as caught:
        choose_host(new, _three_hosts(), PACK, lacking=everywhere)
    assert caught.value.message.endswith(
        "h3 lacks ISO image 'x.iso'. Upload the images it names to another host "
        "(`corral image upload FILE --host HOST`)"
    )
    assert {r.constraint for r in caught.value.refusals} == {Constraint.IMAGES}


def test_hosts_not_reaching_the_vms_storage_domains_are_never_chosen() -> None:
    new = VmDemand(name="new", vcpus=1, memory_mib=2048)
    unreached = {"h1": "storage domain sd1 (the marker file is not there)"}
    assert choose_host(new, _three_hosts(), PACK, unreached=unreached) == "h2"
    with pytest.raises(NoHostFits) as caught:
        choose_host(
            new,
            _three_hosts(),
            PACK,
            lacking={"h3": "ISO image 'x.iso'"},
            unreached={**unreached, "h2": "storage domain sd1 (not checked)"},
        )
    said = caught.value.message
    assert "h1 does not reach storage domain sd1 (the marker file is not there)" in said
    assert "h2 does not reach storage domain sd1 (not checked)" in said
    assert "h3 lacks ISO image 'x.iso'" in said
    assert "`corral storage-domain show`" in said
    constraints = {r.host: r.constraint for r in caught.value.refusals}
    assert constraints == {"h1": Constraint.STORAGE, "h2": Constraint.STORAGE,
                           "h3": Constraint.IMAGES}  # fmt: skip


def test_a_vm_that_already_runs_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="a already runs on h1"):
        choose_host(VmDemand(name="a", vcpus=1, memory_mib=512), _three_hosts())


def test_ties_end_on_the_host_name() -> None:
    cluster = ClusterState(hosts=(host("hb"), host("ha")))
    new = VmDemand(name="new", vcpus=1, memory_mib=512)
    assert choose_host(new, cluster, PACK) == "ha"
    assert choose_host(new, cluster, SPREAD) == "ha"


def _fits_by_hand(cluster: ClusterState, knobs: PolicySettings, new: VmDemand, name: str) -> bool:
    h = next(x for x in cluster.hosts if x.name == name)
    on = [v for v in cluster.vms if v.host == name]
    mem_cap = math.floor(h.memory_mib * knobs.memory_overcommit) - h.memory_overhead_mib
    return (
        h.mode is HostMode.CONNECTED
        and sum(v.memory_mib for v in on) + new.memory_mib <= mem_cap
        and sum(v.vcpus for v in on) + new.vcpus <= math.floor(h.cpus * knobs.cpu_overcommit)
        and (
            new.anti_affinity_group is None
            or all(v.anti_affinity_group != new.anti_affinity_group for v in on)
        )
    )


@settings(max_examples=150, deadline=None)
@given(
    clusters(),
    policy_settings(),
    st.sampled_from([256, 1024, 4096]),
    st.integers(1, 8),
    st.sampled_from([None, "a"]),
)
def test_placement_never_picks_an_excluded_host(
    cluster: ClusterState, knobs: PolicySettings, memory: int, vcpus: int, group: str | None
) -> None:
    new = VmDemand(name="new", vcpus=vcpus, memory_mib=memory, anti_affinity_group=group)
    fitting = [h.name for h in cluster.hosts if _fits_by_hand(cluster, knobs, new, h.name)]
    try:
        chosen = choose_host(new, cluster, knobs)
    except NoHostFits as error:
        assert fitting == []
        assert [r.host for r in error.refusals] == [h.name for h in cluster.hosts]
    else:
        assert chosen in fitting
