"""``<memory>`` and ``<currentMemory>``: an amount with a unit."""

from __future__ import annotations

from corral.virt.domain_xml._base import XMLElement, XMLIntProperty, XMLProperty

_KIB_PER_UNIT = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "m": 1024, "mib": 1024,
                 "g": 1024**2, "gib": 1024**2, "t": 1024**3, "tib": 1024**3}  # fmt: skip


class Memory(XMLElement):
    XML_NAME = "memory"

    unit = XMLProperty("@unit")
    value = XMLIntProperty(".")

    @property
    def mib(self) -> int:
        factor = _KIB_PER_UNIT.get((self.unit or "KiB").lower(), 1)
        return int((self.value or 0) * factor) // 1024

    @mib.setter
    def mib(self, value: int) -> None:
        self.unit = "MiB"
        self.value = value


class CurrentMemory(Memory):
    XML_NAME = "currentMemory"
