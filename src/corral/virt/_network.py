"""Corral's NAT network ``corral-nat`` (blocking calls; run in worker threads)."""

from __future__ import annotations

import ipaddress
import logging

import libvirt
from lxml import etree

from corral.virt._xmlgen import nat_network_xml

log = logging.getLogger(__name__)

NAT_NETWORK = "corral-nat"
NAT_BRIDGE = "corral-nat0"
#: 192.168.150.0/24 first, then the next free /24s.
CANDIDATE_PREFIXES = tuple(f"192.168.{n}" for n in range(150, 170))


def _used_subnets(conn: libvirt.virConnect) -> list[ipaddress.IPv4Network]:
    used = []
    for net in conn.listAllNetworks(0):
        doc = etree.fromstring(net.XMLDesc(0).encode())
        for ip in doc.findall("ip"):
            address, netmask = ip.get("address"), ip.get("netmask") or ip.get("prefix")
            if address and netmask and ":" not in address:
                used.append(ipaddress.IPv4Network(f"{address}/{netmask}", strict=False))
    return used


def _activate(net: libvirt.virNetwork) -> None:
    if not net.isActive():
        net.create()
    if not net.autostart():
        net.setAutostart(1)


def ensure_nat_network(conn: libvirt.virConnect) -> str | None:
    """Define, start and autostart ``corral-nat`` if needed; None (and a log line) on failure.

    libvirt refuses to start a network whose subnet a host interface already routes, so each
    candidate /24 not used by another libvirt network is tried in turn.
    """
    try:
        net = conn.networkLookupByName(NAT_NETWORK)
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_NETWORK:
            log.warning("cannot look up network %s: %s", NAT_NETWORK, err)
            return None
    else:
        try:
            _activate(net)
        except libvirt.libvirtError as err:
            log.warning(
                "network %s exists but cannot start: %s; using user-mode NICs", NAT_NETWORK, err
            )
            return None
        return NAT_NETWORK
    used = _used_subnets(conn)
    last_error: libvirt.libvirtError | None = None
    for prefix in CANDIDATE_PREFIXES:
        subnet = ipaddress.IPv4Network(f"{prefix}.0/24")
        if any(subnet.overlaps(other) for other in used):
            continue
        try:
            net = conn.networkDefineXML(nat_network_xml(NAT_NETWORK, NAT_BRIDGE, prefix))
        except libvirt.libvirtError as err:
            log.warning("cannot define network %s: %s; using user-mode NICs", NAT_NETWORK, err)
            return None
        try:
            _activate(net)
        except libvirt.libvirtError as err:
            last_error = err
            net.undefine()
            continue
        log.info("created NAT network %s on %s", NAT_NETWORK, subnet)
        return NAT_NETWORK
    log.warning(
        "cannot start NAT network %s on any candidate subnet (%s); using user-mode NICs",
        NAT_NETWORK,
        last_error,
    )
    return None
