"""Cluster networks as libvirt networks, and the host's NICs (blocking; run in worker threads).

A libvirt network is Corral's when its bridge is named ``crlb-…`` (libvirt 9.0 keeps no
metadata on networks); Corral never changes or removes any other network.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import libvirt
from lxml import etree

from corral.errors import Conflict, HostError
from corral.virt._network import _activate, _used_subnets
from corral.virt._xmlgen import cluster_network_xml

#: Bridges of Corral's cluster networks start with this (``corral.model.network.bridge_name``).
BRIDGE_PREFIX = "crlb-"
#: NAT cluster networks take a free /24 from here (``corral-nat`` starts at 192.168.150).
NAT_PREFIXES = tuple(f"10.213.{n}" for n in range(0, 256))


@dataclass(frozen=True)
class NetworkDefinition:
    """What a host should have for one cluster network. ``mode``: nat, isolated or bridge."""

    name: str
    bridge: str
    mode: str


@dataclass(frozen=True)
class SeenNetwork:
    """A libvirt network of Corral's as found on a host."""

    name: str
    bridge: str
    mode: str
    active: bool
    xml: str


@dataclass(frozen=True)
class SeenNic:
    name: str
    mac: str | None
    active: bool


def list_nics(conn: libvirt.virConnect) -> list[SeenNic]:
    """The host's physical-ish interfaces as libvirt's interface driver lists them."""
    out = []
    for iface in conn.listAllInterfaces(0):
        name = iface.name()
        if name == "lo":
            continue
        try:
            mac: str | None = iface.MACString() or None
        except libvirt.libvirtError:
            mac = None
        out.append(SeenNic(name, mac, bool(iface.isActive())))
    return sorted(out, key=lambda n: n.name)


def _seen(net: libvirt.virNetwork) -> SeenNetwork:
    xml = net.XMLDesc(0)
    doc = etree.fromstring(xml.encode())
    bridge = doc.find("bridge")
    bridge_name = bridge.get("name", "") if bridge is not None else ""
    forward = doc.find("forward")
    mode = forward.get("mode", "nat") if forward is not None else "isolated"
    return SeenNetwork(net.name(), bridge_name, mode, bool(net.isActive()), xml)


def corral_networks(conn: libvirt.virConnect) -> dict[str, SeenNetwork]:
    """Every libvirt network on the host whose bridge is one of Corral's cluster bridges."""
    found = {}
    for net in conn.listAllNetworks(0):
        seen = _seen(net)
        if seen.bridge.startswith(BRIDGE_PREFIX):
            found[seen.name] = seen
    return found


def foreign_names(conn: libvirt.virConnect) -> set[str]:
    """The names of the host's libvirt networks that are not Corral's cluster networks."""
    return {
        seen.name
        for seen in (_seen(net) for net in conn.listAllNetworks(0))
        if not seen.bridge.startswith(BRIDGE_PREFIX)
    }


def _lookup(conn: libvirt.virConnect, name: str) -> libvirt.virNetwork | None:
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
            return None
        raise


def _free_prefix(conn: libvirt.virConnect) -> str:
    used = _used_subnets(conn)
    for prefix in NAT_PREFIXES:
        subnet = ipaddress.IPv4Network(f"{prefix}.0/24")
        if not any(subnet.overlaps(other) for other in used):
            return prefix
    raise HostError("no free /24 for a NAT network in 10.213.0.0/16 on the host")


def _drop(net: libvirt.virNetwork) -> None:
    if net.isActive():
        net.destroy()
    net.undefine()


def realise(conn: libvirt.virConnect, want: NetworkDefinition) -> str | None:
    """Make the host's libvirt network ``want.name`` as wanted, started and autostarted.

    Returns what to restore on rollback: the previous XML, "" when there was none, or None
    when nothing changed. A network of that name that is not Corral's is refused."""
    net = _lookup(conn, want.name)
    previous = ""
    if net is not None:
        seen = _seen(net)
        if not seen.bridge.startswith(BRIDGE_PREFIX):
            raise Conflict(
                f"the host already has a libvirt network {want.name!r} that Corral did not "
                "make: rename or remove it there, or name the cluster network otherwise"
            )
        if seen.bridge == want.bridge and seen.mode == want.mode:
            _activate(net)
            return None
        previous = seen.xml
        _drop(net)
    prefix = _free_prefix(conn) if want.mode == "nat" else None
    created = conn.networkDefineXML(cluster_network_xml(want.name, want.bridge, want.mode, prefix))
    try:
        _activate(created)
    except libvirt.libvirtError:
        created.undefine()
        if previous:
            restore(conn, want.name, previous)
        raise
    return previous


def remove(conn: libvirt.virConnect, name: str) -> str | None:
    """Remove Corral's libvirt network ``name``; its XML for rollback (None: there was none)."""
    net = _lookup(conn, name)
    if net is None:
        return None
    seen = _seen(net)
    if not seen.bridge.startswith(BRIDGE_PREFIX):
        return None
    _drop(net)
    return seen.xml


def restore(conn: libvirt.virConnect, name: str, previous: str) -> None:
    """Put network ``name`` back as ``previous`` (XML; "" means: it did not exist)."""
    net = _lookup(conn, name)
    if net is not None:
        _drop(net)
    if previous:
        _activate(conn.networkDefineXML(previous))
