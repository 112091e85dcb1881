"""``<os>``: firmware, machine, boot order or a kernel to boot directly."""

from __future__ import annotations

from corral.virt.domain_xml._base import XMLElement, XMLProperty, XMLYesNoProperty


class Boot(XMLElement):
    XML_NAME = "boot"
    DEV_HD = "hd"
    DEV_CDROM = "cdrom"

    dev = XMLProperty("@dev")


class FirmwareFeature(XMLElement):
    XML_NAME = "feature"

    enabled = XMLYesNoProperty("@enabled")
    name = XMLProperty("@name")


class Os(XMLElement):
    XML_NAME = "os"
    CHILD_ORDER = ("type", "firmware", "loader", "nvram", "kernel", "initrd", "cmdline", "boot")
    FIRMWARE_EFI = "efi"

    #: libvirt picks the firmware from the descriptors under /usr/share/qemu/firmware.
    firmware = XMLProperty("@firmware")
    os_type = XMLProperty("type")
    arch = XMLProperty("type/@arch")
    machine = XMLProperty("type/@machine")
    loader = XMLProperty("loader")
    nvram = XMLProperty("nvram")
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

    def disable_firmware_features(self, *names: str) -> None:
        """``<firmware><feature enabled='no' name=…/>``: rule out firmware with these (e.g.
        ``secure-boot``: the firmware that enrols Microsoft's keys boots no unsigned kernel)."""
        holder = self._ensure(["firmware"])
        for name in names:
            feature = FirmwareFeature()
            feature.enabled, feature.name = False, name
            holder.append(feature.node)
