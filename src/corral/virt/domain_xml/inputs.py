"""``<input>``: keyboard and tablet on boards without PS/2 (USB)."""

from __future__ import annotations

from corral.virt.domain_xml._base import XMLElement, XMLProperty


class Input(XMLElement):
    XML_NAME = "input"

    type = XMLProperty("@type")
    bus = XMLProperty("@bus")
