"""Drift: a host whose networks no longer match what was applied (someone stopped a libvirt
network, removed a bridge by hand). Found by comparing libvirt and the host agent's
``net.state`` with the intent; a drifted network is re-applied by the next apply."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from corral.model.network import NetworkHostState, NetworkInfo, NetworkKind
from corral.virt.networks import SeenNetwork


def agent_bridges(state: Mapping[str, Any]) -> set[str]:
    """The bridge names in a ``net.state`` answer."""
    return {str(b.get("bridge")) for b in state.get("bridges", []) if isinstance(b, Mapping)}


def drift(
    net: NetworkInfo, seen: Mapping[str, SeenNetwork], bridges: set[str] | None
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
    bridged = net.kind in (NetworkKind.BRIDGE, NetworkKind.VXLAN)
    if bridged and bridges is not None and net.bridge not in bridges:
        return f"bridge {net.bridge} is missing on the host"
    return None


def checked_states(
    host: str,
    networks: Iterable[NetworkInfo],
    seen: Mapping[str, SeenNetwork],
    bridges: set[str] | None,
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
