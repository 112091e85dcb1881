"""``<vcpu>`` (how many) and ``<cpu>`` (which model the guest sees)."""

from __future__ import annotations

from corral.virt.domain_xml._base import XMLElement, XMLIntProperty, XMLProperty


class Vcpu(XMLElement):
    XML_NAME = "vcpu"
    PLACEMENT_STATIC = "static"

    placement = XMLProperty("@placement")
    count = XMLIntProperty(".")


class Cpu(XMLElement):
    XML_NAME = "cpu"
    #: host-model keeps guests migratable between different hosts (host-passthrough does not).
    MODE_HOST_MODEL = "host-model"

    mode = XMLProperty("@mode")
    check = XMLProperty("@check")
