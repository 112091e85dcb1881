"""Domain XML rewrites for linked clones (pure functions on XML text, in the way of virt-clone:
new name, no UUID, fresh MACs, new disk sources, the clone's own serial log)."""

from __future__ import annotations

import secrets

from lxml import etree


def _parse(xml: str) -> etree._Element:
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    return etree.fromstring(xml.encode(), parser)


def _set_disk_sources(root: etree._Element, paths: dict[str, str]) -> None:
    """``paths`` maps target dev (``vda``) to a new file; every key must match a disk."""
    seen = set()
    for disk in root.iterfind("./devices/disk[@device='disk']"):
        target = disk.find("target")
        dev = target.get("dev") if target is not None else None
        if dev not in paths:
            continue
        source = disk.find("source")
        if source is None:
            source = etree.SubElement(disk, "source")
        source.attrib.clear()
        source.set("file", paths[dev])
        disk.set("type", "file")
        for stale in disk.findall("backingStore"):
            disk.remove(stale)
        seen.add(dev)
    missing = set(paths) - seen
    if missing:
        raise ValueError(f"no disk with target {', '.join(sorted(missing))}")


def with_disk_sources(xml: str, paths: dict[str, str]) -> str:
    root = _parse(xml)
    _set_disk_sources(root, paths)
    return etree.tostring(root, encoding="unicode")


def clone_xml(
    xml: str, name: str, paths: dict[str, str], description: str | None, log_dir: str
) -> str:
    root = _parse(xml)
    for element in root.findall("uuid"):
        root.remove(element)
    name_element = root.find("name")
    assert name_element is not None
    name_element.text = name
    if description is not None:
        desc = root.find("description")
        if desc is None:
            desc = etree.SubElement(root, "description")
        desc.text = description
    for os_element in root.findall("os"):
        # The source's UEFI variables file: libvirt makes the clone its own from the template.
        for nvram in os_element.findall("nvram"):
            os_element.remove(nvram)
    for interface in root.iterfind("./devices/interface"):
        for mac in interface.findall("mac"):
            interface.remove(mac)  # libvirt generates a fresh one
    for log in root.iterfind("./devices/serial/log"):
        log.set("file", f"{log_dir.rstrip('/')}/{name}.serial.log")
    for graphics in root.iterfind("./devices/graphics"):
        for attr in ("port", "socket"):
            graphics.attrib.pop(attr, "")
        for listen in graphics.iterfind("listen"):
            listen.attrib.pop("socket", "")
    _set_disk_sources(root, paths)
    return etree.tostring(root, encoding="unicode")


def interface_count(xml: str) -> int:
    """How many NICs a definition has (in order: the MACs ``with_seed`` sets)."""
    return len(_parse(xml).findall("./devices/interface"))


def with_seed(xml: str, macs: list[str], seed_path: str) -> str:
    """The definition with these MACs on its NICs (in order: the seed's network config
    names them) and the cloud-init seed ``seed_path`` as a read-only CD-ROM on virtio-scsi.
    SCSI, not SATA: Debian's cloud kernel, like many cloud images', has no AHCI driver."""
    root = _parse(xml)
    interfaces = root.findall("./devices/interface")
    if len(interfaces) != len(macs):
        raise ValueError(f"{len(macs)} MACs for {len(interfaces)} NICs")
    for interface, mac in zip(interfaces, macs, strict=True):
        for old in interface.findall("mac"):
            interface.remove(old)
        element = etree.Element("mac", address=mac)
        interface.insert(0, element)
    devices = root.find("devices")
    assert devices is not None
    controllers = devices.findall("controller[@type='scsi']")
    if not controllers:  # libvirt's default SCSI model on x86 is an emulated LSI card
        etree.SubElement(devices, "controller", type="scsi", index="0", model="virtio-scsi")
    used = {t.get("dev") for t in root.iterfind("./devices/disk/target")}
    dev = next(f"sd{c}" for c in "abcdefghijklmnopqrstuvwxyz" if f"sd{c}" not in used)
    cdrom = etree.SubElement(devices, "disk", type="file", device="cdrom")
    etree.SubElement(cdrom, "driver", name="qemu", type="raw")
    etree.SubElement(cdrom, "source", file=seed_path)
    etree.SubElement(cdrom, "target", dev=dev, bus="scsi")
    etree.SubElement(cdrom, "readonly")
    return etree.tostring(root, encoding="unicode")


def random_mac() -> str:
    """A MAC in QEMU's locally administered range (52:54:00), as libvirt makes them."""
    return "52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))
