"""Drift: a host whose networks no longer match what was applied (someone stopped a libvirt
network, removed a bridge by hand). Found by comparing libvirt and the host agent's
``net.state`` with the intent; a drifted network is re-applied by the next apply."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from corral.model.network import NetworkHostState, NetworkInfo, NetworkKind
from corral.virt.networks import SeenNetwork


def agent_bridges(state: Mapping[str, Any]) -> dict[str, list[str]]:
    """The managed bridges in a ``net.state`` answer, each with what differs on the host."""
    return {
        str(b.get("bridge")): [str(p) for p in b.get("problems", [])]
        for b in state.get("bridges", [])
        if isinstance(b, Mapping)
    }


def drift(
    net: NetworkInfo, seen: Mapping[str, SeenNetwork], bridges: Mapping[str, list[str]] | None
) -> str | None:
    """Why ``net`` (applied on this host) no longer is as applied; None: it is.
    ``bridges``: the agent's managed bridges (None: not asked)."""
    found = seen.get(net.name)
    if found is None:
        return f"libvirt network {net.name} is gone"
    if found.bridge != net.bridge:
        return f"libvirt network {net.name} is on bridge {found.bridge}, not {net.bridge}"
    if not found.active:
        return f"libvirt network {net.name} is not active"
    if net.kind not in (NetworkKind.BRIDGE, NetworkKind.VXLAN) or bridges is None:
        return None
    if net.bridge not in bridges:
        return f"the host agent no longer manages bridge {net.bridge}"
    return "; ".join(bridges[net.bridge]) or None


def checked_states(
    host: str,
    networks: Iterable[NetworkInfo],
    seen: Mapping[str, SeenNetwork],
    bridges: Mapping[str, list[str]] | None,
) -> dict[str, tuple[NetworkHostState, str | None]]:
    """New states of ``host``'s applied or drifted networks after a check."""
    out: dict[str, tuple[NetworkHostState, str | None]] = {}
    for net in networks:
        state = next((h for h in net.hosts if h.host == host), None)
        if state is None or state.state not in (NetworkHostState.APPLIED, NetworkHostState.DRIFTED):
            continue
        why = drift(net, seen, bridges)
        out[net.name] = (NetworkHostState.DRIFTED, why) if why else (NetworkHostState.APPLIED, None)
    return out
