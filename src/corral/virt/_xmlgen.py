"""Small XML documents for storage pools, volumes, networks and snapshots (built with lxml)."""

from __future__ import annotations

from lxml import etree


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, tag, attrs)
    if text is not None:
        node.text = text
    return node


def _text(node: etree._Element) -> str:
    return etree.tostring(node, encoding="unicode")


def dir_pool_xml(name: str, path: str) -> str:
    pool = etree.Element("pool", type="dir")
    _sub(pool, "name", name)
    target = _sub(pool, "target")
    _sub(target, "path", path)
    return _text(pool)


def volume_xml(
    name: str,
    capacity: int,
    fmt: str,
    *,
    backing_path: str | None = None,
    backing_format: str | None = None,
) -> str:
    vol = etree.Element("volume")
    _sub(vol, "name", name)
    _sub(vol, "allocation", "0")
    _sub(vol, "capacity", str(capacity), unit="bytes")
    target = _sub(vol, "target")
    _sub(target, "format", type=fmt)
    if fmt == "qcow2":
        # libvirt would make qcow2 version 2 (compat 0.10), which cannot keep the persistent
        # dirty bitmaps incremental backups need.
        _sub(target, "compat", "1.1")
    if backing_path is not None:
        backing = _sub(vol, "backingStore")
        _sub(backing, "path", backing_path)
        _sub(backing, "format", type=backing_format or "raw")
    return _text(vol)


def nat_network_xml(name: str, bridge: str, subnet_prefix: str) -> str:
    """A NAT network on ``subnet_prefix``.0/24 (e.g. ``192.168.150``) with DHCP."""
    net = etree.Element("network")
    _sub(net, "name", name)
    _sub(net, "forward", mode="nat")
    _sub(net, "bridge", name=bridge, stp="on", delay="0")
    ip = _sub(net, "ip", address=f"{subnet_prefix}.1", netmask="255.255.255.0")
    dhcp = _sub(ip, "dhcp")
    _sub(dhcp, "range", start=f"{subnet_prefix}.2", end=f"{subnet_prefix}.254")
    return _text(net)


def snapshot_xml(name: str, description: str) -> str:
    snap = etree.Element("domainsnapshot")
    _sub(snap, "name", name)
    if description:
        _sub(snap, "description", description)
    return _text(snap)


def cluster_network_xml(name: str, bridge: str, mode: str, subnet_prefix: str | None) -> str:
    """A cluster network's libvirt definition. ``mode``: ``nat`` (libvirt makes ``bridge``,
    DHCP on ``subnet_prefix``.0/24), ``isolated`` (libvirt makes ``bridge``, no way out, no
    address) or ``bridge`` (guests join ``bridge``, which Corral's host agent made)."""
    net = etree.Element("network")
    _sub(net, "name", name)
    if mode == "bridge":
        _sub(net, "forward", mode="bridge")
        _sub(net, "bridge", name=bridge)
        return _text(net)
    if mode == "nat":
        _sub(net, "forward", mode="nat")
    _sub(net, "bridge", name=bridge, stp="on", delay="0")
    if mode == "nat" and subnet_prefix is not None:
        ip = _sub(net, "ip", address=f"{subnet_prefix}.1", netmask="255.255.255.0")
        dhcp = _sub(ip, "dhcp")
        _sub(dhcp, "range", start=f"{subnet_prefix}.2", end=f"{subnet_prefix}.254")
    return _text(net)
