"""The one place where ``libvirt.libvirtError`` becomes a Corral error.

libvirtError
├── no such domain / volume / snapshot / network / pool   -> NotFound
├── wrong state, name or UUID taken, already running      -> Conflict
├── not enough space / memory                              -> InsufficientResources
├── connection lost (RPC, closed connection, no connect)   -> HostUnreachable
└── anything else                                          -> HostError
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import libvirt

from corral.errors import (
    Conflict,
    CorralError,
    HostError,
    HostUnreachable,
    InsufficientResources,
    InvalidRequest,
    NotFound,
)

_NOT_FOUND = frozenset(
    {
        libvirt.VIR_ERR_NO_DOMAIN,
        libvirt.VIR_ERR_NO_STORAGE_VOL,
        libvirt.VIR_ERR_NO_STORAGE_POOL,
        libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT,
        libvirt.VIR_ERR_NO_NETWORK,
        libvirt.VIR_ERR_NO_SECRET,
        libvirt.VIR_ERR_NO_NODE_DEVICE,
        libvirt.VIR_ERR_NO_INTERFACE,
    }
)
_CONFLICT = frozenset(
    {
        libvirt.VIR_ERR_OPERATION_INVALID,
        libvirt.VIR_ERR_DOM_EXIST,
        libvirt.VIR_ERR_STORAGE_VOL_EXIST,
        libvirt.VIR_ERR_NETWORK_EXIST,
        libvirt.VIR_ERR_OPERATION_DENIED,
        libvirt.VIR_ERR_OPERATION_ABORTED,
        libvirt.VIR_ERR_SNAPSHOT_REVERT_RISKY,
    }
)
_INVALID = frozenset(
    {
        libvirt.VIR_ERR_XML_ERROR,
        libvirt.VIR_ERR_CONFIG_UNSUPPORTED,
        libvirt.VIR_ERR_INVALID_ARG,
        libvirt.VIR_ERR_XML_DETAIL,
    }
)
_UNREACHABLE_CODES = frozenset(
    {libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_AUTH_UNAVAILABLE}
)
_CLOSED_HINTS = (
    "client socket is closed",
    "connection closed",
    "end of file while reading data",
    "cannot write data",
    "cannot recv data",
    "broken pipe",
    "connection reset",
    "failed to connect socket",
)


def is_connection_loss(err: libvirt.libvirtError) -> bool:
    """True when the error means the connection to the host is gone (not a failed request)."""
    code = err.get_error_code()
    domain = err.get_error_domain()
    message = (err.get_error_message() or "").lower()
    if code in _UNREACHABLE_CODES:
        return True
    if domain == libvirt.VIR_FROM_RPC and code != libvirt.VIR_ERR_OPERATION_TIMEOUT:
        return True
    if code in (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_INTERNAL_ERROR):
        return any(hint in message for hint in _CLOSED_HINTS)
    return False


def convert_libvirt_error(what: str, err: libvirt.libvirtError) -> CorralError:
    """The Corral error for ``err``; its message is ``what`` plus libvirt's own words."""
    code = err.get_error_code()
    message = f"{what}: {err.get_error_message() or err}"
    if is_connection_loss(err):
        return HostUnreachable(
            f"{message} (the connection to the host is down; Corral reconnects on its own, "
            "retry in a few seconds)"
        )
    if code in _NOT_FOUND:
        return NotFound(message)
    if code == libvirt.VIR_ERR_OPERATION_INVALID and "not enough" in message.lower():
        return InsufficientResources(message)
    if code in _CONFLICT:
        return Conflict(message)
    if code == libvirt.VIR_ERR_OPERATION_FAILED and "already exists" in message.lower():
        return Conflict(message)  # e.g. a domain name taken by another UUID
    if code in _INVALID:
        return InvalidRequest(message)
    return HostError(message)


@contextmanager
def map_libvirt_errors(what: str) -> Iterator[None]:
    """Run a block of libvirt calls; raise any ``libvirtError`` as the matching Corral error."""
    try:
        yield
    except libvirt.libvirtError as err:
        raise convert_libvirt_error(what, err) from err


#: Why a connection could not be opened, in Corral's words by libvirt's error code. libvirt's
#: own message is never passed on: opening a URI may read a file (the test driver quotes its
#: first line) or talk to a remote end, and either would then speak in Corral's answers,
#: task errors, logs and audit entries.
_OPEN_FAILURES = {
    libvirt.VIR_ERR_SYSTEM_ERROR: "a system call failed (no libvirtd listening, connection "
    "refused, an unknown host name, a missing certificate or no permission)",
    libvirt.VIR_ERR_NO_CONNECT: "no libvirt driver accepts this URI",
    libvirt.VIR_ERR_AUTH_FAILED: "authentication failed",
    libvirt.VIR_ERR_AUTH_CANCELLED: "authentication was cancelled",
    libvirt.VIR_ERR_AUTH_UNAVAILABLE: "no authentication method is available",
    libvirt.VIR_ERR_RPC: "the remote end broke libvirt's protocol or closed the connection",
    libvirt.VIR_ERR_XML_ERROR: "libvirt could not parse what it read",
    libvirt.VIR_ERR_XML_DETAIL: "libvirt could not parse what it read",
    libvirt.VIR_ERR_INVALID_ARG: "libvirt does not accept this URI",
    libvirt.VIR_ERR_OPERATION_DENIED: "libvirtd denied access",
    libvirt.VIR_ERR_INTERNAL_ERROR: "libvirt reported an internal error",
}
_DOMAINS = {
    libvirt.VIR_FROM_REMOTE: "remote",
    libvirt.VIR_FROM_RPC: "rpc",
    libvirt.VIR_FROM_QEMU: "qemu",
    libvirt.VIR_FROM_TEST: "test",
    libvirt.VIR_FROM_SSH: "ssh",
    libvirt.VIR_FROM_AUTH: "auth",
    libvirt.VIR_FROM_ACCESS: "access",
    libvirt.VIR_FROM_CONF: "conf",
}


def describe_open_failure(err: libvirt.libvirtError) -> str:
    """A fixed sentence for libvirt's error code, with the code and domain to look up."""
    code, domain = err.get_error_code(), err.get_error_domain()
    sentence = _OPEN_FAILURES.get(code, "libvirt refused the connection")
    return f"{sentence} (libvirt error {code} from {_DOMAINS.get(domain, domain)})"
