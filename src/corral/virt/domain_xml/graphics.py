"""``<graphics>``: VNC never on a network port without TLS.

Hosts reached over a local UNIX socket: VNC on a UNIX socket (no network port at all). Other
hosts: VNC on an address, which libvirt takes from qemu.conf's ``vnc_listen``; enrolled hosts
set it to their own address with ``vnc_tls`` and client certificate verification (only
Corral's console proxy gets in), hosts added by URI keep libvirt's default, 127.0.0.1.
"""

from __future__ import annotations

from corral.virt.domain_xml._base import XMLElement, XMLProperty


class Graphics(XMLElement):
    XML_NAME = "graphics"
    TYPE_VNC = "vnc"
    LISTEN_SOCKET = "socket"
    LISTEN_ADDRESS = "address"

    type = XMLProperty("@type")
    autoport = XMLProperty("@autoport")
    port = XMLProperty("@port")
    listen_type = XMLProperty("listen/@type")
    listen_address = XMLProperty("listen/@address")
    socket = XMLProperty("listen/@socket")
