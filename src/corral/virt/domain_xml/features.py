"""``<features>``: ACPI and APIC (without ACPI libvirt passes -no-acpi and hot-plug fails)."""

from __future__ import annotations

from corral.virt.domain_xml._base import XMLElement, XMLPresenceProperty


class Features(XMLElement):
    XML_NAME = "features"
    CHILD_ORDER = ("acpi", "apic")

    acpi = XMLPresenceProperty("acpi")
    apic = XMLPresenceProperty("apic")
