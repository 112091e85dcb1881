"""Validation of the placement model: what a ClusterState or PolicySettings refuses."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from corral.model.placement import (
    ClusterState,
    HostMode,
    HostState,
    Plan,
    PolicySettings,
    VmDemand,
)


def _host(name: str, mode: HostMode = HostMode.CONNECTED) -> HostState:
    return HostState(name=name, cpus=4, memory_mib=4096, mode=mode)


def _vm(name: str, host: str | None) -> VmDemand:
    return VmDemand(name=name, vcpus=1, memory_mib=512, host=host)


@pytest.mark.parametrize(
    ("hosts", "vms", "message"),
    [
        ((_host("h1"), _host("h1")), (), "host names must be unique"),
        ((_host("h1"),), (_vm("a", "h1"), _vm("a", "h1")), "VM a appears twice"),
        ((_host("h1"),), (_vm("a", "h2"),), "VM a runs on unknown host h2"),
        ((_host("h1"),), (_vm("a", None),), "VM a runs on unknown host None"),
        ((_host("h1", HostMode.STANDBY),), (_vm("a", "h1"),), "h1, which is in standby"),
    ],
)
def test_cluster_state_refuses_inconsistent_snapshots(
    hosts: tuple[HostState, ...], vms: tuple[VmDemand, ...], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ClusterState(hosts=hosts, vms=vms)


def test_a_vm_in_maintenance_is_fine_and_models_are_frozen() -> None:
    cluster = ClusterState(hosts=(_host("h1", HostMode.MAINTENANCE),), vms=(_vm("a", "h1"),))
    with pytest.raises(ValidationError):
        cluster.vms[0].host = "h2"  # type: ignore[misc]


def test_policy_settings_defaults_and_thresholds() -> None:
    knobs = PolicySettings()
    assert (knobs.high_utilisation, knobs.low_utilisation, knobs.hosts_in_reserve) == (0.75, 0.2, 0)
    assert (knobs.memory_overcommit, knobs.cpu_overcommit) == (1.0, 4.0)
    with pytest.raises(ValidationError, match="low_utilisation must be below high_utilisation"):
        PolicySettings(low_utilisation=0.8, high_utilisation=0.75)


def test_an_empty_plan_is_empty() -> None:
    assert Plan(settings=PolicySettings()).is_empty
    assert not Plan(settings=PolicySettings(), standby=("h1",)).is_empty
