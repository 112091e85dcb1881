"""``<devices>``: the list of every device, in libvirt's usual order."""

from __future__ import annotations

from corral.virt.domain_xml._base import XMLElement
from corral.virt.domain_xml.disk import Controller, Disk
from corral.virt.domain_xml.graphics import Graphics
from corral.virt.domain_xml.inputs import Input
from corral.virt.domain_xml.interface import Interface
from corral.virt.domain_xml.serial import Console
from corral.virt.domain_xml.video import Video


class Devices(XMLElement):
    XML_NAME = "devices"
    CHILD_ORDER = (
        "emulator", "disk", "controller", "interface", "serial", "console", "input",
        "graphics", "video", "memballoon",
    )  # fmt: skip

    @property
    def disks(self) -> list[Disk]:
        return self.children(Disk)

    @property
    def controllers(self) -> list[Controller]:
        return self.children(Controller)

    @property
    def interfaces(self) -> list[Interface]:
        return self.children(Interface)

    @property
    def consoles(self) -> list[Console]:
        return self.children(Console)

    @property
    def graphics(self) -> list[Graphics]:
        return self.children(Graphics)

    @property
    def inputs(self) -> list[Input]:
        return self.children(Input)

    @property
    def videos(self) -> list[Video]:
        return self.children(Video)
