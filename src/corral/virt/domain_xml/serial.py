"""``<serial>`` (a pty whose output virtlogd also appends to a file) and its ``<console>``.

The serial port is the board's: a 16550 UART on x86 (libvirt's default), a PL011 on ARM's
virt machine (``system-serial``/``pl011``), the SCLP console on s390x (``sclp-serial``/
``sclpconsole``), the hypervisor console on POWER (``spapr-vio-serial``).
"""

from __future__ import annotations

from corral.virt.domain_xml._base import XMLElement, XMLIntProperty, XMLProperty, XMLYesNoProperty


class Serial(XMLElement):
    XML_NAME = "serial"
    CHILD_ORDER = ("source", "log", "target")
    TYPE_PTY = "pty"

    type = XMLProperty("@type")
    log_file = XMLProperty("log/@file")
    log_append = XMLYesNoProperty("log/@append", true="on", false="off")
    target_type = XMLProperty("target/@type")
    target_port = XMLIntProperty("target/@port")
    target_model = XMLProperty("target/model/@name")


class Console(XMLElement):
    XML_NAME = "console"
    CHILD_ORDER = ("source", "log", "target")

    type = XMLProperty("@type")
    target_type = XMLProperty("target/@type")
    target_port = XMLIntProperty("target/@port")
