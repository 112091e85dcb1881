"""``<video>``: the emulated graphics card."""

from __future__ import annotations

from corral.virt.domain_xml._base import XMLElement, XMLProperty


class Video(XMLElement):
    XML_NAME = "video"
    MODEL_VIRTIO = "virtio"
    MODEL_VGA = "vga"

    model = XMLProperty("model/@type")
