"""What one host should have for the cluster's networks (pure), and drift against it."""

from __future__ import annotations

from datetime import UTC, datetime

from corral.model.network import (
    NetworkHostState,
    NetworkInfo,
    NetworkKind,
    NetworkOnHost,
    bridge_name,
)
from corral.services.networks._plan import Intent, plan_host
from corral.services.networks.drift import agent_bridges, checked_states
from corral.virt.networks import NetworkDefinition, SeenNetwork

NAT = Intent("a" * 32, "lab", NetworkKind.NAT)
LAN = Intent("b" * 32, "lan0", NetworkKind.BRIDGE, uplink="lan", vlan=7)
SEG = Intent("c" * 32, "seg1", NetworkKind.VXLAN, vni=1001)
ADDRESSES = {"h1": "198.18.5.1", "h2": "198.18.5.2", "h3": "198.18.5.3", "local": None}


def test_each_kind_on_a_host_that_can_have_it() -> None:
    plan = plan_host("h2", [NAT, LAN, SEG], {"lan": "enp2s0"}, ADDRESSES)
    assert plan.problems == {}
    assert plan.libvirt == [
        NetworkDefinition("lab", "crlb-aaaaaaaa", "nat"),
        NetworkDefinition("lan0", "crlb-bbbbbbbb", "bridge"),
        NetworkDefinition("seg1", "crlb-cccccccc", "bridge"),
    ]
    assert plan.bridges == [
        {"bridge": "crlb-bbbbbbbb", "uplink": "enp2s0", "vxlan": None, "vlan": 7, "mtu": None},
        {
            "bridge": "crlb-cccccccc",
            "uplink": None,
            "vxlan": {
                "vni": 1001,
                "local": "198.18.5.2",
                "peers": ["198.18.5.1", "198.18.5.3"],
                "dstport": 4789,
            },
            "vlan": None,
            "mtu": None,
        },
    ]


def test_a_host_without_the_label_or_an_address_cannot_have_them() -> None:
    plan = plan_host("local", [NAT, LAN, SEG], {}, ADDRESSES)
    assert [d.name for d in plan.libvirt] == ["lab"] and plan.bridges == []
    assert "no NIC labelled 'lan'" in plan.problems["lan0"]
    assert "corral host label-nic local NIC lan" in plan.problems["lan0"]
    assert "no management address" in plan.problems["seg1"]


def _info(name: str, kind: NetworkKind, state: NetworkHostState) -> NetworkInfo:
    return NetworkInfo(
        name=name,
        kind=kind,
        required=False,
        bridge=bridge_name(name * 8),
        created_at=datetime.now(UTC),
        hosts=[NetworkOnHost(host="h1", state=state)],
    )


def test_drift_is_what_libvirt_or_the_agent_shows_changed() -> None:
    nat = _info("nat1", NetworkKind.NAT, NetworkHostState.APPLIED)
    seg = _info("seg1", NetworkKind.VXLAN, NetworkHostState.DRIFTED)
    failed = _info("bad1", NetworkKind.NAT, NetworkHostState.FAILED)
    seen = {
        "nat1": SeenNetwork("nat1", nat.bridge, "nat", False, "<network/>"),
        "seg1": SeenNetwork("seg1", seg.bridge, "bridge", True, "<network/>"),
    }
    state = {"bridges": [{"bridge": seg.bridge, "problems": []}]}
    found = checked_states("h1", [nat, seg, failed], seen, agent_bridges(state))
    assert found == {
        "nat1": (NetworkHostState.DRIFTED, "libvirt network nat1 is not active"),
        "seg1": (NetworkHostState.APPLIED, None),
    }
    broken = {"bridges": [{"bridge": seg.bridge, "problems": ["bridge x is missing"]}]}
    again = checked_states("h1", [seg], seen, agent_bridges(broken))
    assert again == {"seg1": (NetworkHostState.DRIFTED, "bridge x is missing")}
    assert checked_states("h1", [seg], {}, None)["seg1"][1] == "libvirt network seg1 is gone"
