"""``<os>``: firmware type, machine, boot order or a kernel to boot directly."""

from __future__ import annotations

from corral.virt.domain_xml._base import XMLElement, XMLProperty


class Boot(XMLElement):
    XML_NAME = "boot"
    DEV_HD = "hd"
    DEV_CDROM = "cdrom"

    dev = XMLProperty("@dev")


class Os(XMLElement):
    XML_NAME = "os"
    CHILD_ORDER = ("type", "kernel", "initrd", "cmdline", "boot")

    os_type = XMLProperty("type")
    arch = XMLProperty("type/@arch")
    machine = XMLProperty("type/@machine")
    kernel = XMLProperty("kernel")
    initrd = XMLProperty("initrd")
    cmdline = XMLProperty("cmdline")

    @property
    def boot_devices(self) -> list[str]:
        return [b.dev for b in self.children(Boot) if b.dev]

    @boot_devices.setter
    def boot_devices(self, devices: list[str]) -> None:
        for boot in self.children(Boot):
            self.remove_child(boot)
        for dev in devices:
            boot = Boot()
            boot.dev = dev
            self.add_child(boot)
