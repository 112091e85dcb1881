"""What one host should have for the cluster's networks: pure (facts in, plan out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from corral.model.network import NetworkKind, bridge_name
from corral.virt.networks import NetworkDefinition

VXLAN_PORT = 4789
#: The seconds a host keeps a bridge change before restoring the previous state by itself,
#: unless Corral confirms that it still reaches the host.
ROLLBACK_AFTER_S = 20


@dataclass(frozen=True)
class Intent:
    """A cluster network as the planner needs it."""

    id: str
    name: str
    kind: NetworkKind
    uplink: str | None = None
    vni: int | None = None
    vlan: int | None = None


@dataclass
class HostPlan:
    """For one host: the libvirt networks it should have, the bridges the host agent should
    keep (the complete set), and the networks it cannot have, with why."""

    host: str
    libvirt: list[NetworkDefinition] = field(default_factory=list)
    bridges: list[dict[str, Any]] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)


def _bridge_spec(
    intent: Intent, uplink: str | None, vxlan: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "bridge": bridge_name(intent.id),
        "uplink": uplink,
        "vxlan": vxlan,
        "vlan": intent.vlan,
        "mtu": None,
    }


def plan_host(
    host: str,
    intents: Sequence[Intent],
    labels: Mapping[str, str],
    addresses: Mapping[str, str | None],
) -> HostPlan:
    """``labels``: this host's NIC labels (label -> NIC); ``addresses``: every host's
    management address (None: not enrolled), the VXLAN tunnel ends."""
    plan = HostPlan(host)
    for intent in intents:
        bridge = bridge_name(intent.id)
        if intent.kind in (NetworkKind.NAT, NetworkKind.ISOLATED):
            plan.libvirt.append(NetworkDefinition(intent.name, bridge, intent.kind.value))
            continue
        if intent.kind is NetworkKind.BRIDGE:
            nic = labels.get(intent.uplink or "")
            if nic is None:
                plan.problems[intent.name] = (
                    f"host {host} has no NIC labelled {intent.uplink!r}: label one with "
                    f"`corral host label-nic {host} NIC {intent.uplink}`"
                )
                continue
            plan.bridges.append(_bridge_spec(intent, nic, None))
        else:
            local = addresses.get(host)
            if local is None:
                plan.problems[intent.name] = (
                    f"host {host} has no management address recorded (VXLAN tunnels run "
                    f"between host addresses): enrol it with `corral host enroll`"
                )
                continue
            peers = sorted(a for h, a in addresses.items() if a is not None and h != host)
            vxlan = {
                "vni": intent.vni,
                "local": local,
                "peers": peers,
                "dstport": VXLAN_PORT,
            }
            plan.bridges.append(_bridge_spec(intent, None, vxlan))
        plan.libvirt.append(NetworkDefinition(intent.name, bridge, "bridge"))
    return plan
