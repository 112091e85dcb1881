"""``<interface>``: a NIC on a libvirt network or on QEMU's user-mode network."""

from __future__ import annotations

from corral.virt.domain_xml._base import XMLElement, XMLProperty


class Interface(XMLElement):
    XML_NAME = "interface"
    CHILD_ORDER = ("mac", "source", "model")
    TYPE_NETWORK = "network"
    TYPE_USER = "user"

    type = XMLProperty("@type")
    mac = XMLProperty("mac/@address")
    source_network = XMLProperty("source/@network")
    model = XMLProperty("model/@type")
