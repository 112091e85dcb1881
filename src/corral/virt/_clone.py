"""Domain XML rewrites for linked clones (pure functions on XML text, in the way of virt-clone:
new name, no UUID, fresh MACs, new disk sources, the clone's own serial log)."""

from __future__ import annotations

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
