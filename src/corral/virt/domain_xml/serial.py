"""``<serial>`` (a pty whose output virtlogd also appends to a file) and its ``<console>``."""

from __future__ import annotations

from corral.virt.domain_xml._base import XMLElement, XMLIntProperty, XMLProperty, XMLYesNoProperty


class Serial(XMLElement):
    XML_NAME = "serial"
    CHILD_ORDER = ("source", "log", "target")
    TYPE_PTY = "pty"

    type = XMLProperty("@type")
    log_file = XMLProperty("log/@file")
    log_append = XMLYesNoProperty("log/@append", true="on", false="off")
    target_port = XMLIntProperty("target/@port")


class Console(XMLElement):
    XML_NAME = "console"
    CHILD_ORDER = ("source", "log", "target")

    type = XMLProperty("@type")
    target_type = XMLProperty("target/@type")
    target_port = XMLIntProperty("target/@port")
