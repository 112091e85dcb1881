"""Bringing Corral's links from the recorded state to a desired set of bridges.

Each bridge's record lists what the agent made (``created``), the NICs it enslaved with their
MTU before (``ports``) and the addresses and routes it moved from an uplink onto the bridge
(``moved``: what Proxmox's and oVirt's management bridges do, so a host whose only NIC becomes
a bridge port keeps its address). Every record is saved *before* the step it describes, so a
failure or a crash part-way leaves a record that still names everything to undo. Links the
agent did not make are never changed, except the uplinks it enslaved and the addresses it
moved, which it gives back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from . import iproute, netstore
from .netspec import BridgeSpec, from_json
from .protocol import AgentError

T = TypeVar("T")


def vlan_supported() -> bool:
    """Whether this kernel has 802.1Q VLAN devices (the 8021q module: ``/proc/net/vlan``)."""
    if Path("/proc/net/vlan").is_dir():
        return True
    try:
        iproute.run("modprobe", "-q", "8021q")
    except AgentError:
        return False
    return Path("/proc/net/vlan").is_dir()


def owned_links(state: dict[str, Any]) -> set[str]:
    return {name for rec in state["bridges"].values() for name in rec.get("created", [])}


def preflight(state: dict[str, Any], specs: tuple[BridgeSpec, ...]) -> None:
    """Everything that can be known to fail is refused before any change."""
    links = iproute.links()
    ours = owned_links(state) | set(state["bridges"])
    for spec in specs:
        for name in (spec.bridge, spec.vxlan_dev, spec.vlan_dev):
            if name in links and name not in ours:
                raise AgentError(
                    f"a link named {name} exists that Corral's agent did not create: "
                    "remove it on the host or choose another network"
                )
        if spec.vxlan is not None and spec.vxlan.local not in iproute.host_addresses():
            raise AgentError(
                f"the VXLAN local address {spec.vxlan.local} of {spec.bridge} is not an "
                "address of this host"
            )
        if spec.vlan is not None and not vlan_supported():
            raise AgentError(
                f"this host's kernel has no 802.1Q VLAN support (module 8021q): VLAN "
                f"{spec.vlan} on {spec.uplink} for {spec.bridge} cannot be made"
            )
        if spec.uplink is not None:
            _check_uplink(spec, links, ours)


def _check_uplink(spec: BridgeSpec, links: dict[str, dict[str, Any]], ours: set[str]) -> None:
    nic = links.get(spec.uplink or "")
    if nic is None:
        raise AgentError(f"uplink {spec.uplink} of {spec.bridge} does not exist on this host")
    master = nic.get("master")
    if master and master not in ours:
        raise AgentError(
            f"uplink {spec.uplink} is already a port of {master}, which Corral did not create"
        )
    if spec.vlan is None and not master:
        dynamic = [a["local"] for a in iproute.addresses(spec.uplink or "") if a.get("dynamic")]
        if dynamic:
            raise AgentError(
                f"uplink {spec.uplink} has addresses from DHCP or autoconfiguration "
                f"({', '.join(dynamic)}): Corral moves only static addresses onto a bridge; "
                "configure the host's address statically first"
            )


class Realiser:
    """Applies specs to ``state`` (saved after every step). ``strict``: stop at the first
    failure (applying); else go on and collect them (restoring: get back as much as can be)."""

    def __init__(self, state: dict[str, Any], *, strict: bool) -> None:
        self.state = state
        self.strict = strict
        self.errors: list[str] = []

    def save(self) -> None:
        netstore.save_state(self.state)

    def reconcile(self, specs: tuple[BridgeSpec, ...]) -> None:
        wanted = {spec.bridge for spec in specs}
        for name in sorted(set(self.state["bridges"]) - wanted):
            self._guarded(self.remove_bridge, name)
        for spec in specs:
            self._guarded(self.realise, spec)

    def _guarded(self, step: Callable[[T], None], arg: T) -> None:
        try:
            step(arg)
        except AgentError as exc:
            if self.strict:
                raise
            self.errors.append(str(exc))

    # -- one bridge ----------------------------------------------------------------------------
    def realise(self, spec: BridgeSpec) -> None:
        rec = self.state["bridges"].get(spec.bridge)
        old = from_json(rec["spec"]) if rec else None
        if rec is None:
            rec = {"spec": spec.as_json(), "created": [], "ports": {}, "moved": []}
            self.state["bridges"][spec.bridge] = rec
        links = iproute.links()
        if spec.bridge not in links:
            self._create(rec, spec.bridge, "ip", "link", "add", spec.bridge, "type", "bridge")
        if spec.mtu is not None:
            iproute.run("ip", "link", "set", spec.bridge, "mtu", str(spec.mtu))
        self._vxlan(rec, old, spec)
        self._port(rec, old, spec)
        rec["spec"] = spec.as_json()
        self.save()
        iproute.run("ip", "link", "set", spec.bridge, "up")

    def remove_bridge(self, name: str) -> None:
        rec = self.state["bridges"][name]
        for port in list(rec["ports"]):
            self._release(rec, name, port)
        links = iproute.links()
        for moved in list(rec["moved"]):
            self._move_back(moved, name, links)
            rec["moved"].remove(moved)
            self.save()
        for link in sorted(rec["created"], key=lambda n: n == name):  # the bridge last
            self._delete(rec, link)
        del self.state["bridges"][name]
        self.save()

    # -- links the agent makes -----------------------------------------------------------------
    def _create(self, rec: dict[str, Any], name: str, *argv: str) -> None:
        if name not in rec["created"]:
            rec["created"].append(name)
        self.save()
        iproute.run(*argv)

    def _delete(self, rec: dict[str, Any], name: str) -> None:
        if name in iproute.links():
            iproute.run("ip", "link", "del", name)
        rec["created"].remove(name)
        self.save()

    def _vxlan(self, rec: dict[str, Any], old: BridgeSpec | None, spec: BridgeSpec) -> None:
        dev = spec.vxlan_dev
        changed = old is None or old.vxlan != spec.vxlan
        if dev in rec["created"] and (changed or spec.vxlan is None):
            self._delete(rec, dev)
        present = dev in iproute.links()
        vx = spec.vxlan
        if vx is None:
            return
        if not present:
            self._create(rec, dev, "ip", "link", "add", dev, "type", "vxlan", "id", str(vx.vni),
                         "local", vx.local, "dstport", str(vx.dstport), "nolearning")  # fmt: skip
        if spec.mtu is not None:
            iproute.run("ip", "link", "set", dev, "mtu", str(spec.mtu))
        have = set(iproute.fdb_destinations(dev))
        for peer in sorted(set(vx.peers) - have):
            iproute.run("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", dev, "dst", peer)
        for peer in sorted(have - set(vx.peers)):
            iproute.run("bridge", "fdb", "del", "00:00:00:00:00:00", "dev", dev, "dst", peer)
        iproute.run("ip", "link", "set", dev, "master", spec.bridge, "up")

    # -- the uplink ----------------------------------------------------------------------------
    def _port(self, rec: dict[str, Any], old: BridgeSpec | None, spec: BridgeSpec) -> None:
        for port in list(rec["ports"]):
            if port != spec.port or (old is not None and old.vlan != spec.vlan):
                self._release(rec, spec.bridge, port)
        if spec.port is None:
            return
        links = iproute.links()
        if spec.vlan is not None and spec.port not in links:
            self._create(rec, spec.port, "ip", "link", "add", "link", spec.uplink or "",
                         "name", spec.port, "type", "vlan", "id", str(spec.vlan))  # fmt: skip
            iproute.run("ip", "link", "set", spec.uplink or "", "up")
            links = iproute.links()
        if links.get(spec.port, {}).get("master") != spec.bridge:
            self._attach(rec, spec, links)
        elif spec.mtu is not None:
            iproute.run("ip", "link", "set", spec.port, "mtu", str(spec.mtu))

    def _attach(self, rec: dict[str, Any], spec: BridgeSpec, links: dict[str, Any]) -> None:
        port = spec.port or ""
        rec["ports"][port] = {"mtu": links.get(port, {}).get("mtu")}
        moving: dict[str, Any] | None = None
        if spec.vlan is None:
            addresses, routes = iproute.addresses(port), iproute.routes(port)
            if addresses or routes:
                moving = {"nic": port, "addresses": addresses, "routes": routes}
                rec["moved"].append(moving)
        self.save()
        if spec.mtu is not None:
            iproute.run("ip", "link", "set", port, "mtu", str(spec.mtu))
        iproute.run("ip", "link", "set", port, "master", spec.bridge, "up")
        iproute.run("ip", "link", "set", spec.bridge, "up")
        if moving is not None:
            _move(moving["addresses"], moving["routes"], port, spec.bridge)

    def _release(self, rec: dict[str, Any], bridge: str, port: str) -> None:
        """Give an enslaved port back (the addresses moved from it stay on the bridge until the
        bridge goes: the bridge is the host's interface for them now)."""
        links = iproute.links()
        if links.get(port, {}).get("master") == bridge:
            iproute.run("ip", "link", "set", port, "nomaster")
        mtu = rec["ports"][port].get("mtu")
        if port in links and mtu and links[port].get("mtu") != mtu and port not in rec["created"]:
            iproute.run("ip", "link", "set", port, "mtu", str(mtu))
        del rec["ports"][port]
        self.save()
        if port in rec["created"]:
            self._delete(rec, port)

    def _move_back(self, moved: dict[str, Any], bridge: str, links: dict[str, Any]) -> None:
        nic = moved["nic"]
        if nic not in links:
            raise AgentError(f"{nic} is gone: the addresses moved from it cannot be given back")
        iproute.run("ip", "link", "set", nic, "up")
        _move(moved["addresses"], moved["routes"], bridge, nic)


def _move(
    addresses: list[dict[str, Any]], routes: list[dict[str, Any]], src: str, dst: str
) -> None:
    """Addresses (then the routes that need them) from link ``src`` to link ``dst``."""
    there = {(a["local"], a["prefixlen"]) for a in iproute.addresses(dst)}
    here = {(a["local"], a["prefixlen"]) for a in iproute.addresses(src)} if src else set()
    for address in addresses:
        key = (address["local"], address["prefixlen"])
        if key not in there:
            iproute.add_address(address, dst)
        if key in here:
            iproute.del_address(address, src)
    for route in routes:
        iproute.add_route(route, dst)


def observe(name: str, rec: dict[str, Any], links: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A managed bridge as recorded, and what differs on the host now (drift)."""
    spec = from_json(rec["spec"])
    problems = []
    bridge = links.get(name)
    if bridge is None:
        problems.append(f"bridge {name} is missing")
    elif "UP" not in bridge.get("flags", []):
        problems.append(f"bridge {name} is down")
    if spec.mtu is not None and bridge is not None and bridge.get("mtu") != spec.mtu:
        problems.append(f"bridge {name} has MTU {bridge.get('mtu')}, not {spec.mtu}")
    if spec.port is not None and links.get(spec.port, {}).get("master") != name:
        problems.append(f"{spec.port} is not a port of {name}")
    if spec.vxlan is not None:
        dev = links.get(spec.vxlan_dev)
        if dev is None or iproute.vxlan_id(dev) != spec.vxlan.vni:
            problems.append(f"VXLAN {spec.vxlan.vni} ({spec.vxlan_dev}) is missing")
        elif dev.get("master") != name:
            problems.append(f"{spec.vxlan_dev} is not a port of {name}")
        elif iproute.fdb_destinations(spec.vxlan_dev) != sorted(spec.vxlan.peers):
            problems.append(f"{spec.vxlan_dev}'s peers differ from {', '.join(spec.vxlan.peers)}")
    moved = [
        f"{a['local']}/{a['prefixlen']} from {m['nic']}"
        for m in rec["moved"]
        for a in m["addresses"]
    ]
    return {**spec.as_json(), "present": bridge is not None, "problems": problems, "moved": moved}
