"""Changing a domain's description in place (live and persistent config)."""

from __future__ import annotations

import libvirt

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
        xml = corral.to_xml()
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml, PREFIX, NAMESPACE, flags)
