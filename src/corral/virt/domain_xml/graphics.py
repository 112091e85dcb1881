"""``<graphics>``: VNC on a UNIX socket, so no network port is ever open for the console."""

from __future__ import annotations

from corral.virt.domain_xml._base import XMLElement, XMLProperty


class Graphics(XMLElement):
    XML_NAME = "graphics"
    TYPE_VNC = "vnc"
    LISTEN_SOCKET = "socket"

    type = XMLProperty("@type")
    listen_type = XMLProperty("listen/@type")
    socket = XMLProperty("listen/@socket")
