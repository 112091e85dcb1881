"""``<disk>``: a file-backed disk or CD-ROM, and the ``<controller>`` a SCSI disk needs."""

from __future__ import annotations

from corral.virt.domain_xml._base import (
    XMLElement,
    XMLPresenceProperty,
    XMLProperty,
)


class Disk(XMLElement):
    XML_NAME = "disk"
    CHILD_ORDER = ("driver", "source", "backingStore", "target", "readonly", "serial", "alias")
    DEVICE_DISK = "disk"
    DEVICE_CDROM = "cdrom"
    TYPE_FILE = "file"

    type = XMLProperty("@type")
    device = XMLProperty("@device")
    driver_name = XMLProperty("driver/@name")
    driver_type = XMLProperty("driver/@type")
    source_file = XMLProperty("source/@file")
    source_dev = XMLProperty("source/@dev")
    source_pool = XMLProperty("source/@pool")
    source_volume = XMLProperty("source/@volume")
    #: ``dac``/``no`` on a host file Corral does not own: libvirt hands it to QEMU unchanged
    #: instead of giving it to QEMU's user (and perhaps never giving it back).
    source_seclabel_model = XMLProperty("source/seclabel/@model")
    source_seclabel_relabel = XMLProperty("source/seclabel/@relabel")
    target_dev = XMLProperty("target/@dev")
    target_bus = XMLProperty("target/@bus")
    readonly = XMLPresenceProperty("readonly")

    @property
    def path(self) -> str:
        """Where the data lives, whatever the disk type."""
        if self.source_file or self.source_dev:
            return self.source_file or self.source_dev or ""
        if self.source_volume:
            return f"{self.source_pool}/{self.source_volume}"
        return ""


class Controller(XMLElement):
    XML_NAME = "controller"

    type = XMLProperty("@type")
    index = XMLProperty("@index")
    model = XMLProperty("@model")
