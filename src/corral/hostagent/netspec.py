"""``net.apply``'s arguments, checked before anything changes: the complete desired set of
Corral-managed bridges on this host."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass
from typing import Any

from .protocol import AgentError

#: Corral's links: bridges ``crlb-…``, their VXLAN ports ``crlv-…`` and VLAN ports ``crlq-…``
#: (the same suffix). Linux allows 15 characters in an interface name.
BRIDGE = re.compile(r"crlb-[a-z0-9]{1,10}")
NIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,14}")
CHANGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
DEFAULT_ROLLBACK_S = 20
MAX_ROLLBACK_S = 600


@dataclass(frozen=True)
class Vxlan:
    vni: int
    local: str
    peers: tuple[str, ...]
    dstport: int = 4789


@dataclass(frozen=True)
class BridgeSpec:
    bridge: str
    uplink: str | None = None
    vxlan: Vxlan | None = None
    vlan: int | None = None
    mtu: int | None = None

    @property
    def suffix(self) -> str:
        return self.bridge.removeprefix("crlb-")

    @property
    def vxlan_dev(self) -> str:
        return f"crlv-{self.suffix}"

    @property
    def vlan_dev(self) -> str:
        return f"crlq-{self.suffix}"

    @property
    def port(self) -> str | None:
        """The link enslaved for the uplink: the NIC itself, or its VLAN sub-interface."""
        if self.uplink is None:
            return None
        return self.vlan_dev if self.vlan is not None else self.uplink

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.vxlan is not None:
            out["vxlan"]["peers"] = list(self.vxlan.peers)
        return out


@dataclass(frozen=True)
class ApplyRequest:
    change_id: str
    rollback_after_s: int
    bridges: tuple[BridgeSpec, ...]


def _int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise AgentError(f"{what} must be a whole number from {low} to {high}, not {value!r}")
    return value


def _address(value: Any, what: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise AgentError(f"{what} must be an IP address, not {value!r}") from exc


def _name(value: Any, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise AgentError(f"{what} {value!r} is not a valid name (pattern {pattern.pattern})")
    return value


def _vxlan(raw: Any, where: str) -> Vxlan:
    if not isinstance(raw, dict):
        raise AgentError(f"{where}.vxlan must be an object or null")
    peers = raw.get("peers", [])
    if not isinstance(peers, list):
        raise AgentError(f"{where}.vxlan.peers must be a list of addresses")
    local = _address(raw.get("local"), f"{where}.vxlan.local")
    resolved = tuple(sorted({_address(p, f"{where}.vxlan.peers[]") for p in peers} - {local}))
    return Vxlan(
        vni=_int(raw.get("vni"), f"{where}.vxlan.vni", 1, 16777215),
        local=local,
        peers=resolved,
        dstport=_int(raw.get("dstport", 4789), f"{where}.vxlan.dstport", 1, 65535),
    )


def bridge_spec(raw: Any, where: str) -> BridgeSpec:
    if not isinstance(raw, dict):
        raise AgentError(f"{where} must be an object")
    unknown = set(raw) - {"bridge", "uplink", "vxlan", "vlan", "mtu"}
    if unknown:
        raise AgentError(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
    uplink = raw.get("uplink")
    if uplink is not None:
        _name(uplink, NIC, f"{where}.uplink")
        if uplink.startswith("crl") or uplink == "lo":
            raise AgentError(f"{where}.uplink {uplink!r} cannot be an uplink (Corral's or lo)")
    vlan = raw.get("vlan")
    if vlan is not None:
        vlan = _int(vlan, f"{where}.vlan", 1, 4094)
        if uplink is None:
            raise AgentError(f"{where}: a VLAN needs an uplink NIC to tag on")
    mtu = raw.get("mtu")
    return BridgeSpec(
        bridge=_name(raw.get("bridge"), BRIDGE, f"{where}.bridge"),
        uplink=uplink,
        vxlan=None if raw.get("vxlan") is None else _vxlan(raw["vxlan"], where),
        vlan=vlan,
        mtu=None if mtu is None else _int(mtu, f"{where}.mtu", 68, 65535),
    )


def _check_unique(specs: tuple[BridgeSpec, ...]) -> None:
    """One bridge per name, per VNI, per (NIC, VLAN); a NIC enslaved untagged carries no
    VLAN of another bridge."""
    claims: dict[str, str] = {}

    def claim(key: str, bridge: str) -> None:
        if key in claims:
            raise AgentError(f"{key} is asked for by both {claims[key]} and {bridge}")
        claims[key] = bridge

    for spec in specs:
        claim(f"bridge {spec.bridge}", spec.bridge)
        if spec.vxlan is not None:
            claim(f"VXLAN {spec.vxlan.vni}", spec.bridge)
        if spec.uplink is not None:
            claim(f"uplink {spec.uplink} VLAN {spec.vlan or 'untagged'}", spec.bridge)
    untagged = {s.uplink: s.bridge for s in specs if s.uplink is not None and s.vlan is None}
    for spec in specs:
        if spec.vlan is not None and spec.uplink in untagged:
            raise AgentError(
                f"{spec.uplink} is enslaved untagged to {untagged[spec.uplink]}: it cannot "
                f"also carry VLAN {spec.vlan} for {spec.bridge}"
            )


def apply_request(args: dict[str, Any]) -> ApplyRequest:
    change_id = _name(args.get("change_id"), CHANGE_ID, "change_id")
    rollback = _int(
        args.get("rollback_after_s", DEFAULT_ROLLBACK_S), "rollback_after_s", 1, MAX_ROLLBACK_S
    )
    raw = args.get("bridges")
    if not isinstance(raw, list):
        raise AgentError("bridges must be the list of every Corral bridge wanted on this host")
    specs = tuple(bridge_spec(item, f"bridges[{i}]") for i, item in enumerate(raw))
    _check_unique(specs)
    return ApplyRequest(change_id, rollback, specs)


def from_json(raw: dict[str, Any]) -> BridgeSpec:
    """A spec the agent recorded itself (already checked once)."""
    return bridge_spec(raw, "recorded bridge")
