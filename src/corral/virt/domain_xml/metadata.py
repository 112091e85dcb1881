"""Corral's own element inside ``<metadata>``.

    <metadata>
      <corral:vm xmlns:corral="https://corral.dev/xmlns/vm/1">
        <corral:created-by>corral</corral:created-by>
        <corral:disk name="root" target="vda"/>
        <corral:description encoding="json">"…"</corral:description>
      </corral:vm>
    </metadata>

``created-by`` marks a domain Corral created (others are adopted). ``disk`` keeps the disk names of
the VmSpec. ``description`` is only written when ``<description>`` cannot hold the text exactly
(XML 1.0 forbids most control characters and lone surrogates; a CR would come back as LF).
"""

from __future__ import annotations

import json
from typing import ClassVar

from lxml import etree

from corral.virt.domain_xml._base import XMLElement, XMLProperty

NAMESPACE = "https://corral.dev/xmlns/vm/1"
PREFIX = "corral"
CREATED_BY = "corral"


def _q(tag: str) -> str:
    return f"{{{NAMESPACE}}}{tag}"


class CorralDisk(XMLElement):
    XML_NAME = _q("disk")

    name = XMLProperty("@name")
    target = XMLProperty("@target")


class CorralVm(XMLElement):
    XML_NAME = _q("vm")
    NSMAP: ClassVar[dict[str, str] | None] = {PREFIX: NAMESPACE}
    CHILD_ORDER = (_q("created-by"), _q("disk"), _q("description"))

    created_by = XMLProperty(_q("created-by"))
    description_json = XMLProperty(_q("description"))
    description_encoding = XMLProperty(f"{_q('description')}/@encoding")

    @property
    def disk_names(self) -> dict[str, str]:
        """target device → Corral's disk name."""
        return {d.target: d.name for d in self.children(CorralDisk) if d.target and d.name}

    def add_disk(self, name: str, target: str) -> None:
        disk = CorralDisk()
        disk.name = name
        disk.target = target
        self.add_child(disk)

    @property
    def exact_description(self) -> str | None:
        text = self.description_json
        if text is None:
            return None
        value = json.loads(text)
        return value if isinstance(value, str) else None

    @exact_description.setter
    def exact_description(self, value: str | None) -> None:
        # ASCII-only JSON: every code point (even a lone surrogate) survives any XML round trip.
        self.description_json = None if value is None else json.dumps(value, ensure_ascii=True)
        self.description_encoding = None if value is None else "json"


class Metadata(XMLElement):
    XML_NAME = "metadata"

    def corral(self, create: bool = False) -> CorralVm | None:
        node = self.node.find(CorralVm.XML_NAME)
        if node is None and create:
            node = etree.SubElement(self.node, CorralVm.XML_NAME, nsmap=CorralVm.NSMAP)
        return None if node is None else CorralVm(node)
