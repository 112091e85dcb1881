"""Hosts: the libvirt daemons Corral manages."""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from corral.model.common import AbsolutePath, Name
from corral.model.pki import CertInfo
from corral.model.vm import Accelerator


class MachineInfo(BaseModel):
    """A QEMU machine type a host offers for an architecture."""

    name: str
    canonical: str | None = Field(default=None, description="what an alias like q35 stands for")
    max_vcpus: int | None = None


class GuestArchInfo(BaseModel):
    """What a host can run for one guest architecture."""

    arch: str
    emulator: str
    accelerators: list[Accelerator]
    default_machine: str | None = Field(
        default=None, description="the machine type a VM of this architecture gets by default"
    )
    max_vcpus: int | None = Field(
        default=None, description="vCPUs a VM of the default machine type can have at most"
    )
    console: str | None = Field(
        default=None, description="the guest's serial console device (ttyS0, ttyAMA0, ttysclp0)"
    )
    machines: list[MachineInfo] = Field(default_factory=list)
    cpu_models: list[str] = Field(
        default_factory=list,
        description="CPU choices: the modes host-model, host-passthrough and max where "
        "offered, then the named models",
    )
    nested: list[Accelerator] = Field(
        default_factory=list,
        description="accelerators under which VMs of this architecture can have cpu.nested",
    )


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
    architectures: list[str] = Field(
        default_factory=list, description="guest architectures the host has an emulator for"
    )
    guests: list[GuestArchInfo] | None = Field(
        default=None,
        description="per architecture: machine types, max vCPUs, CPU models, nesting "
        "(`GET /hosts/{name}` only)",
    )


class HostStatus(StrEnum):
    CONNECTED = "connected"
    UNREACHABLE = "unreachable"
    MAINTENANCE = "maintenance"  # takes no new VMs, whatever its connection
    STANDBY = "standby"  # powered down by Corral to save energy: not a failure, takes no VMs


class HostInfo(BaseModel):
    name: str
    uri: str
    status: HostStatus = HostStatus.UNREACHABLE
    connected: bool
    maintenance: bool = False
    standby: bool = Field(
        default=False, description="powered down by Corral (`corral power`); woken by a plan"
    )
    power_driver: str | None = Field(
        default=None, description="how Corral switches the host on and off (`corral host power`)"
    )
    accelerator: Accelerator | None = Field(
        default=None, description="forced accelerator for this host; None = best available"
    )
    address: str | None = Field(
        default=None,
        description="enrolled hosts: the address their certificates name (TLS, VNC, migration)",
    )
    enrolled: bool = Field(
        default=False, description="Corral issued this host's certificates (`corral host enroll`)"
    )
    certificates: list[CertInfo] = Field(
        default_factory=list, description="certificates Corral issued to the host, with expiry"
    )
    capabilities: HostCapabilities | None = None
    last_error: str | None = None
    ha_state: str = Field(
        default="ok", description="high availability: ok, suspect, fencing, fenced, recovering"
    )
    ha_reason: str = Field(default="", description="why the HA state is what it is")


#: The libvirt URIs Corral lets an administrator add (an allow-list, issue 13): the QEMU driver
#: on this machine, over TLS or over SSH, and libvirt's test driver's built-in host. libvirt's
#: other transports and query parameters can run programs (``ext``, ``command=``, ``netcat=``),
#: reach any local socket (``unix``, ``socket=``) or read any file as root (``test:///FILE``
#: quotes the file's first line in its parse error): none is ever accepted through the API.
#: The local host's URI in Corral's configuration is the administrator's own, unchecked.
#: [USER@]HOST[:PORT]: nothing ssh could take for an option (no leading "-"), no shell syntax.
_AUTHORITY = (
    r"([A-Za-z0-9_][A-Za-z0-9._-]{0,31}@)?"
    r"([A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]{2,45}\])(:[0-9]{1,5})?"
)
_PATH = r"/[A-Za-z0-9._/-]*"
_SSH_PARAM = rf"(no_tty=[01]|keyfile={_PATH})"
LIBVIRT_URI_PATTERN = (
    r"^(qemu:///(system|session)"
    rf"|qemu\+tls://{_AUTHORITY}/system(\?pkipath={_PATH})?"
    rf"|qemu\+ssh://{_AUTHORITY}/system(\?{_SSH_PARAM}(&{_SSH_PARAM})?)?"
    r"|test:///default"
    rf"|test://{_PATH}\.xml)$"
)
LIBVIRT_URI_RULE = (
    "must be a libvirt URI Corral allows: qemu:///system or qemu:///session (this machine), "
    "qemu+tls://HOST/system (optionally ?pkipath= Corral's own libvirt PKI directory), "
    "qemu+ssh://[USER@]HOST[:PORT]/system (optionally ?no_tty=1 and keyfile= a key in "
    "Corral's ssh directory), or, where allow_test_hosts is set, test:///default or "
    "test:///PATH.xml (a simulated host's node description in Corral's simulated-hosts "
    "directory); other transports (ext, unix, tcp, libssh), socket=, command=, netcat= and "
    "other test driver files are refused"
)


def uri_params(uri: str) -> dict[str, str]:
    """The query parameters of a URI that matched :data:`LIBVIRT_URI_PATTERN` (which allows
    only the parameters Corral sets, with plain values: libvirt also splits at ";" and
    unescapes %XX, neither can hide another parameter); ValueError for a repeated one or a
    path with '..'."""
    _, _, query = uri.partition("?")
    params: dict[str, str] = {}
    for pair in query.split("&") if query else []:
        key, _, value = pair.partition("=")
        if key in params:
            raise ValueError(f"query parameter {key!r} is given twice")
        if ".." in value.split("/"):
            raise ValueError(f"{key} must be a path without '..'")
        params[key] = value
    return params


def _check_uri(uri: str) -> str:
    uri_params(uri)
    return uri


LibvirtUri = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1024, pattern=LIBVIRT_URI_PATTERN),
    AfterValidator(_check_uri),
]


class HostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    uri: LibvirtUri = Field(description="the libvirt URI: " + LIBVIRT_URI_RULE)
    accelerator: Accelerator | None = None


def _check_address(address: str) -> str:
    """An IP address or a DNS name: what the host's certificates will name."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        pass
    labels = address.rstrip(".").split(".")
    if not all(_LABEL.fullmatch(label) for label in labels) or len(address) > 253:
        raise ValueError("must be an IP address or a DNS name (letters, digits, '-' and '.')")
    return address.rstrip(".").lower()


_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

#: An IPv4 address or a DNS name (what the host's certificates will name).
_DNS_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_ADDRESS_PATTERN = rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*\.?$"
HostAddress = Annotated[
    str,
    StringConstraints(min_length=1, max_length=253, pattern=HOST_ADDRESS_PATTERN),
    AfterValidator(_check_address),
]

#: root@HOST: what ``ssh`` is given (no options, no spaces, nothing starting with "-").
SSH_DESTINATION_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,31}@[A-Za-z0-9][A-Za-z0-9.:_-]{0,252}$"
SshDestination = Annotated[
    str, StringConstraints(min_length=3, max_length=300, pattern=SSH_DESTINATION_PATTERN)
]


class SshAccess(BaseModel):
    """How Corral logs in to a host to install certificates (as root)."""

    model_config = ConfigDict(extra="forbid")

    destination: SshDestination = Field(description="USER@HOST, normally root@ADDRESS")
    port: int = Field(default=22, ge=1, le=65535)
    key_path: AbsolutePath | None = Field(
        default=None,
        description="private key file on the Corral server (default: ssh's own choice)",
    )


class HostEnroll(BaseModel):
    """Enroll a host over SSH: certificates, libvirtd/QEMU TLS configuration, qemu+tls."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    address: HostAddress = Field(description="IP address or DNS name Corral and peers reach")
    ssh: SshAccess
    accelerator: Accelerator | None = None


class HostBundleRequest(BaseModel):
    """Certificates and configuration for a host, to install by hand (``install.sh``)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    address: HostAddress


class BundleFile(BaseModel):
    path: str = Field(description="relative path in the bundle directory")
    mode: int = Field(description="file mode, e.g. 0o600 for keys")
    content: str


class HostBundle(BaseModel):
    name: str
    uri: str = Field(description="the URI to add the host with once install.sh ran")
    files: list[BundleFile]


class MaintenanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool


class HostAgentInfo(BaseModel):
    """The host agent answering on a host (installed first if it was missing or of another
    version)."""

    host: str
    version: str = Field(description="a digest of the agent's sources: Corral's own version")
    protocol: int
    python: str = Field(description="the Python version running the agent on the host")
    ops: list[str] = Field(description="the operations the agent answers")


class RotateCertsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ssh: SshAccess | None = Field(
        default=None, description="SSH access; default: what the host was enrolled with"
    )
