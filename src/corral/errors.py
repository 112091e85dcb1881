"""Corral's error hierarchy: the one place every layer raises from.

    CorralError                      base; ``message`` is a sentence a person can act on
    ├── InvalidRequest               the caller asked for something malformed or impossible   (422)
    ├── NotFound                     no such VM, host, task, user, snapshot…                   (404)
    ├── Conflict                     name taken, VM in the wrong state, operation in progress  (409)
    ├── InsufficientResources        host lacks memory, vCPUs or disk space                    (409)
    │   └── NoHostFits               no host can take a VM; ``refusals`` says why, per host    (409)
    ├── AuthenticationRequired       no or bad credentials                                     (401)
    ├── PermissionDenied             authenticated, but the role does not allow it             (403)
    ├── OperationTimeout             e.g. graceful shutdown did not finish in time             (504)
    ├── Cancelled                    a task was cancelled by a user                            (409)
    ├── RateLimited                  too many attempts (failed logins)                         (429)
    ├── DatabaseUnavailable          the database cannot be reached or used right now          (503)
    └── HostError                    libvirt or the host failed (converted in ``corral.virt``) (502)
        ├── HostUnreachable          the host connection is down                               (503)
        ├── PowerDriverFailed        a host's power driver (BMC, Wake-on-LAN, suspend, SSH)
        │                            refused or failed (a task's error, rarely an answer)    (502)
        └── MigrationFailed          a live migration the hosts ran failed; the VM is on its
                                     source (a task's error, rarely an answer)                 (502)

Only ``corral.api`` maps these to HTTP status codes; the numbers above are that mapping.
"""

from __future__ import annotations

from typing import NamedTuple


class CorralError(Exception):
    """Base of every error Corral raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(CorralError):
    """The request is malformed or asks for something impossible."""


class NotFound(CorralError):
    """The named object does not exist."""


class Conflict(CorralError):
    """The request conflicts with the current state (duplicate name, wrong VM state…)."""


class InsufficientResources(Conflict):
    """The host lacks the memory, vCPUs or disk space the request needs."""


class HostRefusal(NamedTuple):
    """Why one host cannot take a VM: the ``constraint`` that failed and a ``detail`` sentence."""

    host: str
    constraint: str  # memory, vcpus, cpu_load, anti_affinity, maintenance, standby, images
    detail: str  # "h1 has 1024 MiB free"


class NoHostFits(InsufficientResources):
    """No host can take the VM ``vm``; ``refusals`` holds one entry per host considered."""

    def __init__(self, message: str, vm: str, refusals: tuple[HostRefusal, ...]) -> None:
        super().__init__(message)
        self.vm = vm
        self.refusals = refusals


class AuthenticationRequired(CorralError):
    """Missing, expired or wrong credentials."""


class PermissionDenied(CorralError):
    """The caller's role does not allow this operation."""


class OperationTimeout(CorralError):
    """A bounded operation did not finish in time."""


class Cancelled(CorralError):
    """A task was cancelled."""


class RateLimited(CorralError):
    """Too many attempts in a short time; the message says how long to wait."""


class DatabaseUnavailable(CorralError):
    """The database is unreachable (PostgreSQL down, connection lost) or cannot be used
    (SQLite locked by another writer for too long, read-only): nothing was done; try again."""


class HostError(CorralError):
    """libvirt or the host reported a failure."""


class HostUnreachable(HostError):
    """The connection to the host is down."""


class PowerDriverFailed(HostError):
    """A host's power driver refused or failed: a BMC said no or did not answer, a suspend
    was refused. The host is left marked as it really is."""


class MigrationFailed(HostError):
    """A live migration failed between the hosts; the VM keeps running on its source.
    ``code`` is libvirt's error code (0 when not from libvirt)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code
