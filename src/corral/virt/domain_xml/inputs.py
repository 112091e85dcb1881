"""``<input>``: keyboard and tablet on boards without PS/2 (USB), and ``<memballoon>``."""

from __future__ import annotations

from corral.virt.domain_xml._base import XMLElement, XMLProperty


class Input(XMLElement):
    XML_NAME = "input"

    type = XMLProperty("@type")
    bus = XMLProperty("@bus")


class MemBalloon(XMLElement):
    """The virtio balloon: how a running guest's memory shrinks and grows (setMemoryFlags)."""

    XML_NAME = "memballoon"

    model = XMLProperty("@model")
