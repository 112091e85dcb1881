"""``<disk>``: a file-backed or network (NFS, iSCSI) disk or CD-ROM, and the ``<controller>`` a
SCSI disk needs.

A network disk's identity is a URL, as qemu-img takes it: ``nfs://SERVER/EXPORT/FILE`` or
``iscsi://HOST[:PORT]/IQN/LUN``. Volumes of nfs and iscsi storage domains carry it as their
path; :func:`network_source` turns it back into what ``<source>`` holds and :attr:`Disk.path`
gives it for a network disk, so disk users are found the same way for every kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from corral.virt.domain_xml._base import (
    XMLElement,
    XMLPresenceProperty,
    XMLProperty,
)

NETWORK_PROTOCOLS = ("nfs", "iscsi")


@dataclass(frozen=True)
class NetworkSource:
    """``<source protocol= name=><host name= port=/></source>`` of a network disk."""

    protocol: str
    name: str  # nfs: /EXPORT/FILE; iscsi: IQN/LUN
    host: str
    port: int | None = None

    @property
    def url(self) -> str:
        netloc = self.host if self.port is None else f"{self.host}:{self.port}"
        return f"{self.protocol}://{netloc}/{self.name.lstrip('/')}"


def network_source(path: str) -> NetworkSource | None:
    """The network source a volume path names (``nfs://…``, ``iscsi://…``), else None."""
    if not path.startswith(tuple(f"{p}://" for p in NETWORK_PROTOCOLS)):
        return None
    parts = urlsplit(path)
    if not parts.hostname or not parts.path.strip("/"):
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    name = parts.path if parts.scheme == "nfs" else parts.path.lstrip("/")
    return NetworkSource(parts.scheme, name, host, parts.port)


class Disk(XMLElement):
    XML_NAME = "disk"
    CHILD_ORDER = ("driver", "source", "backingStore", "target", "readonly", "serial", "alias")
    DEVICE_DISK = "disk"
    DEVICE_CDROM = "cdrom"
    TYPE_FILE = "file"
    TYPE_NETWORK = "network"

    type = XMLProperty("@type")
    device = XMLProperty("@device")
    driver_name = XMLProperty("driver/@name")
    driver_type = XMLProperty("driver/@type")
    driver_cache = XMLProperty("driver/@cache")
    source_file = XMLProperty("source/@file")
    source_dev = XMLProperty("source/@dev")
    source_pool = XMLProperty("source/@pool")
    source_volume = XMLProperty("source/@volume")
    source_protocol = XMLProperty("source/@protocol")
    source_name = XMLProperty("source/@name")
    source_host_name = XMLProperty("source/host/@name")
    source_host_port = XMLProperty("source/host/@port")
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
        if self.type == self.TYPE_NETWORK and self.source_protocol and self.source_host_name:
            port = self.source_host_port
            return NetworkSource(
                self.source_protocol,
                self.source_name or "",
                self.source_host_name,
                int(port) if port and port.isdigit() else None,
            ).url
        return ""

    def set_network_source(self, source: NetworkSource) -> None:
        self.type = self.TYPE_NETWORK
        self.source_protocol = source.protocol
        self.source_name = source.name
        self.source_host_name = source.host
        # libvirt refuses a port on an nfs host ("port cannot be specified in 'nfs' protocol
        # host"): QEMU's NFS client asks the server's rpcbind.
        if source.port is not None and source.protocol != "nfs":
            self.source_host_port = str(source.port)


class Controller(XMLElement):
    XML_NAME = "controller"

    type = XMLProperty("@type")
    index = XMLProperty("@index")
    model = XMLProperty("@model")
