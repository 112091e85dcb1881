"""``<domain>``: the root element, its singletons and the exact description."""

from __future__ import annotations

import builtins
import re
from typing import TypeVar

from corral.model.vm import Accelerator
from corral.virt.domain_xml._base import XMLElement, XMLProperty
from corral.virt.domain_xml.cpu import Cpu, Vcpu
from corral.virt.domain_xml.devices import Devices
from corral.virt.domain_xml.features import Features
from corral.virt.domain_xml.memory import CurrentMemory, Memory
from corral.virt.domain_xml.metadata import CREATED_BY, Metadata
from corral.virt.domain_xml.osxml import Os

S = TypeVar("S", bound=XMLElement)

# Characters XML 1.0 cannot carry (plus lone surrogates, which UTF-8 cannot).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

TYPE_KVM = "kvm"
TYPE_QEMU = "qemu"


def domain_type_for(accelerator: Accelerator) -> str:
    return TYPE_KVM if accelerator is Accelerator.KVM else TYPE_QEMU


class Domain(XMLElement):
    XML_NAME = "domain"
    CHILD_ORDER = (
        "name", "uuid", "title", "description", "metadata", "memory", "currentMemory", "vcpu",
        "os", "features", "cpu", "clock", "on_poweroff", "on_reboot", "on_crash", "devices",
    )  # fmt: skip

    type = XMLProperty("@type")
    name = XMLProperty("name")
    uuid = XMLProperty("uuid")
    id = XMLProperty("@id")
    raw_description = XMLProperty("description")
    on_poweroff = XMLProperty("on_poweroff")
    on_reboot = XMLProperty("on_reboot")
    on_crash = XMLProperty("on_crash")

    def _single(self, cls: builtins.type[S], create: bool = True) -> S:
        node = self.node.find(cls.XML_NAME)
        if node is None:
            element = cls()
            if create:
                self.add_child(element)
            return element
        return cls(node)

    @property
    def memory(self) -> Memory:
        return self._single(Memory)

    @property
    def current_memory(self) -> CurrentMemory:
        return self._single(CurrentMemory)

    @property
    def vcpu(self) -> Vcpu:
        return self._single(Vcpu)

    @property
    def cpu(self) -> Cpu:
        return self._single(Cpu)

    @property
    def os(self) -> Os:
        return self._single(Os)

    @property
    def features(self) -> Features:
        return self._single(Features)

    @property
    def devices(self) -> Devices:
        return self._single(Devices)

    @property
    def metadata(self) -> Metadata:
        return self._single(Metadata)

    @property
    def has_metadata(self) -> bool:
        return self.node.find(Metadata.XML_NAME) is not None

    # -- derived views -----------------------------------------------------------------------
    @property
    def accelerator(self) -> Accelerator | None:
        return {TYPE_KVM: Accelerator.KVM, TYPE_QEMU: Accelerator.TCG}.get(self.type or "")

    @property
    def corral_managed(self) -> bool:
        corral = self.metadata.corral() if self.has_metadata else None
        return corral is not None and corral.created_by == CREATED_BY

    @property
    def description(self) -> str:
        """The description exactly as set, even characters XML cannot carry."""
        corral = self.metadata.corral() if self.has_metadata else None
        exact = corral.exact_description if corral is not None else None
        return exact if exact is not None else (self.raw_description or "")

    @description.setter
    def description(self, text: str) -> None:
        safe = _NOT_XML.sub("\ufffd", text)
        self.raw_description = safe or None
        needs_exact = safe != text or "\r" in text
        corral = (
            self.metadata.corral(create=needs_exact) if needs_exact or self.has_metadata else None
        )
        if corral is not None:
            corral.exact_description = text if needs_exact else None
