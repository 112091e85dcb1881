"""``<features>``: ACPI and APIC on x86 (without ACPI libvirt passes -no-acpi and hot-plug
fails), the GIC version on ARM."""

from __future__ import annotations

from corral.virt.domain_xml._base import XMLElement, XMLPresenceProperty, XMLProperty


class Features(XMLElement):
    XML_NAME = "features"
    CHILD_ORDER = ("acpi", "apic", "gic")

    acpi = XMLPresenceProperty("acpi")
    apic = XMLPresenceProperty("apic")
    gic_version = XMLProperty("gic/@version")
