"""Changing a domain's description in place (live and persistent config)."""

from __future__ import annotations

import libvirt
from lxml import etree

from corral.virt.domain_xml import Domain
from corral.virt.domain_xml.metadata import NAMESPACE, PREFIX


def set_description(dom: libvirt.virDomain, description: str) -> None:
    domain = Domain.from_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    domain.description = description
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
    if dom.isActive():
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    dom.setMetadata(
        libvirt.VIR_DOMAIN_METADATA_DESCRIPTION, domain.raw_description or "", None, None, flags
    )
    corral = domain.metadata.corral() if domain.has_metadata else None
    if corral is not None:
        # Replaces Corral's whole element: it now holds (or no longer holds) the exact text.
        xml = etree.tostring(_without_namespace(corral.node), encoding="unicode")
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml, PREFIX, NAMESPACE, flags)


def _without_namespace(node: etree._Element) -> etree._Element:
    """A copy with plain tag names: setMetadata puts ``key``/``uri`` on it itself and fails on
    an element that already declares the namespace."""
    copy = etree.Element(etree.QName(node).localname)
    for key, value in node.attrib.items():
        copy.set(key, value)
    copy.text = node.text
    for child in node:
        copy.append(_without_namespace(child))
    return copy
