"""Hosts: the libvirt daemons Corral manages."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from corral.model.common import Name
from corral.model.vm import Accelerator


class HostCapabilities(BaseModel):
    """What libvirt reports about a host (from ``getCapabilities``/``getInfo``/domain caps)."""

    hostname: str
    host_uuid: str | None = Field(
        default=None, description="libvirt's host UUID (capabilities <host><uuid>)"
    )
    arch: str
    cpus: int
    memory_mib: int
    free_memory_mib: int = Field(
        description="memory available for guests: free plus buffers and page cache"
    )
    accelerators: list[Accelerator]
    libvirt_version: str
    qemu_version: str | None = None


class HostInfo(BaseModel):
    name: str
    uri: str
    connected: bool
    accelerator: Accelerator | None = Field(
        default=None, description="forced accelerator for this host; None = best available"
    )
    capabilities: HostCapabilities | None = None
    last_error: str | None = None


#: The libvirt URIs Corral can manage: the QEMU driver over any of libvirt's transports, and
#: libvirt's in-process test driver (for trying Corral out and for its own tests).
LIBVIRT_URI_PATTERN = r"^(qemu|test)(\+(unix|ssh|libssh|libssh2|tls|tcp|ext))?://[!-~]*$"
LIBVIRT_URI_RULE = (
    "must be a libvirt URI of printable ASCII without spaces: qemu:///system (this machine), "
    "qemu+ssh://[USER@]HOST/system or qemu+tls://HOST/system (another host; also qemu+tcp, "
    "qemu+libssh2, qemu+unix:///system?socket=PATH), or test:///default (libvirt's test driver)"
)
_REMOTE = {"ssh", "libssh", "libssh2", "tls", "tcp"}


def _check_libvirt_uri(uri: str) -> str:
    """What the pattern cannot say: the path each driver needs, a host for remote transports."""
    parts = urlsplit(uri)
    driver, _, transport = parts.scheme.partition("+")
    if driver == "qemu" and parts.path not in ("/system", "/session"):
        raise ValueError(
            f"the QEMU driver's path is /system (or /session), not {parts.path or 'empty'!r}: "
            + LIBVIRT_URI_RULE
        )
    if driver == "test" and not parts.path.startswith("/"):
        raise ValueError("the test driver needs a path: test:///default or test:///FILE.xml")
    if transport in _REMOTE and not parts.hostname:
        raise ValueError(f"transport {transport!r} needs a host name: {LIBVIRT_URI_RULE}")
    return uri


LibvirtUri = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1024, pattern=LIBVIRT_URI_PATTERN),
    AfterValidator(_check_libvirt_uri),
]


class HostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    uri: LibvirtUri = Field(description="the libvirt URI: " + LIBVIRT_URI_RULE)
    accelerator: Accelerator | None = None
