"""Storage domains: cluster-wide places for volumes (VM disks, images) that hosts reach.

Kinds: ``local`` (built in: each host's own Corral pool, reached by that host only),
``shared-dir`` (a directory the administrator mounted identically on every host; Corral proves
it is one filesystem with a marker file), ``nfs`` (QEMU's own NFS client, no kernel mount) and
``iscsi`` (libvirt ``iscsi-direct``, no kernel initiator). Each host's reach of a domain is
checked and kept per host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from corral.model.common import AbsolutePath, Name
from corral.model.image import ImageKind

#: The built-in domain: each host's own pool. It always exists and cannot be deleted.
LOCAL_DOMAIN = "local"


class StorageDomainKind(StrEnum):
    LOCAL = "local"
    SHARED_DIR = "shared-dir"
    NFS = "nfs"
    ISCSI = "iscsi"


class ReachState(StrEnum):
    """Whether a host reaches a domain. ``unchecked``: not yet tried (a host enrolled or
    disconnected since); a check turns it into one of the other two."""

    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"
    UNCHECKED = "unchecked"


class VolumeOperation(StrEnum):
    """What can be done with the volumes of a domain (``operations`` says per kind)."""

    CREATE_VOLUME = "create_volume"
    RESIZE_VOLUME = "resize_volume"
    DELETE_VOLUME = "delete_volume"
    LINKED_CLONE = "linked_clone"
    SNAPSHOT = "snapshot"
    UPLOAD = "upload"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: A server: a DNS name, an IPv4 address or a bracketed IPv6 address (no port).
ServerName = Annotated[
    str,
    StringConstraints(
        pattern=r"^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$",
        min_length=1,
        max_length=255,
    ),
]
#: ``host[:port]`` of an iSCSI portal.
Portal = Annotated[
    str,
    StringConstraints(
        pattern=r"^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$",
        min_length=1,
        max_length=261,
    ),
]
#: An iSCSI qualified name (``iqn.2026-12.org.example:storage``).
Iqn = Annotated[
    str,
    StringConstraints(pattern=r"^iqn\.[0-9]{4}-[0-9]{2}\.[A-Za-z0-9.:_-]+$", max_length=223),
]


class SharedDirDomainCreate(_Strict):
    """A directory mounted at the same path on every host (NFS, CephFS… mounted by the
    administrator). Corral proves each host sees the same filesystem there."""

    kind: Literal["shared-dir"]
    name: Name
    path: AbsolutePath = Field(description="the directory, the same path on every host")


class NfsDomainCreate(_Strict):
    """An NFS export QEMU reaches with its own client (no kernel mount on the hosts)."""

    kind: Literal["nfs"]
    name: Name
    server: ServerName
    export: AbsolutePath = Field(description="the exported directory on the server")


class IscsiDomainCreate(_Strict):
    """An iSCSI target reached through libvirt's iscsi-direct pools (no kernel initiator);
    its LUNs are the volumes (they are made and removed on the target, not through Corral)."""

    kind: Literal["iscsi"]
    name: Name
    portal: Portal = Field(description="host[:port] of the target's portal (port 3260 if left out)")
    target: Iqn = Field(description="the target's IQN")


StorageDomainCreate = Annotated[
    SharedDirDomainCreate | NfsDomainCreate | IscsiDomainCreate, Field(discriminator="kind")
]


#: Image kinds a domain kind cannot keep although it takes uploads, and why.
IMAGE_KIND_REFUSALS: dict[tuple[StorageDomainKind, ImageKind], str] = {
    (StorageDomainKind.NFS, ImageKind.KERNEL): "direct kernel boot reads the kernel and "
    "initrd as files on the VM's host (libvirt and QEMU take no nfs:// URL for them): keep "
    "kernel images in the local domain or a shared-dir domain",
}


def image_kinds(kind: StorageDomainKind, operations: list[OperationSupport]) -> list[ImageKind]:
    """The image library's kinds a domain of ``kind`` keeps (none without uploads)."""
    uploads = any(o.operation is VolumeOperation.UPLOAD and o.supported for o in operations)
    return [k for k in ImageKind if uploads and (kind, k) not in IMAGE_KIND_REFUSALS]


class HostReach(BaseModel):
    """One host's reach of a domain, as last checked."""

    host: str
    state: ReachState
    reason: str | None = Field(default=None, description="why the host does not reach it")
    checked_at: datetime | None = None
    capacity_bytes: int | None = Field(
        default=None, description="the domain's size as this host sees it (local: its own pool)"
    )
    free_bytes: int | None = None


class OperationSupport(BaseModel):
    """Whether a volume operation works on a domain's kind, and why not."""

    operation: VolumeOperation
    supported: bool
    reason: str | None = Field(default=None, description="why not (None when supported)")


class StorageDomainInfo(BaseModel):
    name: str
    kind: StorageDomainKind
    builtin: bool = Field(default=False, description="the local domain: cannot be deleted")
    settings: dict[str, str] = Field(
        default_factory=dict,
        description="what the domain was created with (shared-dir: path; nfs: server, export; "
        "iscsi: portal, target)",
    )
    hosts: list[HostReach] = Field(default_factory=list)
    capacity_bytes: int | None = Field(
        default=None, description="the domain's size (None: no host reaches it, or local)"
    )
    free_bytes: int | None = None
    operations: list[OperationSupport] = Field(default_factory=list)
    image_kinds: list[ImageKind] = Field(
        default_factory=list,
        description="the image library's kinds (iso, disk, kernel) this domain keeps; none "
        "when it takes no uploads (iscsi); nfs keeps no kernel images (direct kernel boot "
        "reads files on the host)",
    )
    created_at: datetime | None = None
    created_by: str | None = None


class DomainVolumeCreate(_Strict):
    """A blank qcow2 volume in a domain (``host``: which host's pool, for ``local`` only)."""

    name: Name
    size_gib: float = Field(gt=0, le=65536, description="size in GiB (2**30 bytes)")
    host: Name | None = Field(default=None, description="local domain only: the host's pool")


class DomainVolumeResize(_Strict):
    size_gib: float = Field(gt=0, le=65536, description="the new size in GiB; only grows")
    host: Name | None = Field(default=None, description="local domain only: the host's pool")


@dataclass(frozen=True)
class NetworkHost:
    """A server of a network disk (``<host name= port=/>``)."""

    name: str
    port: int | None = None


@dataclass(frozen=True)
class DiskSource:
    """Where a domain's volume is for a guest's ``<disk>``: a ``file`` on the host, or a
    network source (``protocol`` nfs|iscsi, ``name`` export/file or IQN/LUN, ``hosts``,
    ``initiator_iqn`` for iSCSI)."""

    file: str | None = None
    protocol: Literal["nfs", "iscsi"] | None = None
    name: str | None = None
    hosts: tuple[NetworkHost, ...] = field(default_factory=tuple)
    initiator_iqn: str | None = None
    format: str = "qcow2"
