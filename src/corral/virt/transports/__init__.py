"""Migration transports: plugins behind one interface (:class:`MigrationTransport`).

Built-ins (registered as entry points in Corral's own ``pyproject.toml``, like any plugin):

    tls        QEMU native TLS, mutual X.509 from Corral's migration CA (the default)
    ssh        tunnelled through libvirt over qemu+ssh:// (SSH encrypts)
    insecure   plain TCP (only when an admin allowed it for the cluster)

Third parties register theirs under the entry-point group ``corral.migration_transports``
(``docs/migration-transports.md``); :func:`load_transports` finds them all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points

from corral.errors import InvalidRequest
from corral.virt.transports.base import (
    ENTRY_POINT_GROUP,
    CommandResult,
    MigrationEndpoint,
    MigrationFlag,
    MigrationPlan,
    MigrationTransport,
    Route,
    RunOnSource,
    host_in_uri,
)
from corral.virt.transports.insecure import InsecureTransport
from corral.virt.transports.ssh import SshTransport
from corral.virt.transports.tls import TlsTransport

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "CommandResult",
    "InsecureTransport",
    "MigrationEndpoint",
    "MigrationFlag",
    "MigrationPlan",
    "MigrationTransport",
    "Route",
    "RunOnSource",
    "SshTransport",
    "TlsTransport",
    "host_in_uri",
    "load_transports",
]

log = logging.getLogger(__name__)

#: The built-ins and where their entry points point.
BUILTIN: dict[str, type[MigrationTransport]] = {
    "tls": TlsTransport,
    "ssh": SshTransport,
    "insecure": InsecureTransport,
}


def _load(entry: EntryPoint, options: Mapping[str, str]) -> MigrationTransport:
    factory = entry.load()
    transport = factory(options)
    if not isinstance(transport, MigrationTransport):
        raise InvalidRequest(
            f"entry point {entry.name} = {entry.value} in group {ENTRY_POINT_GROUP} is not a "
            "MigrationTransport"
        )
    if transport.name != entry.name:
        raise InvalidRequest(
            f"entry point {entry.name} = {entry.value} makes a transport named "
            f"{transport.name!r}: the names must match"
        )
    return transport


def load_transports(
    options: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, MigrationTransport]:
    """Every transport registered under ``corral.migration_transports``, by name, each made
    with its table of ``options``. A plugin that fails to load is logged and skipped; the
    built-ins are loaded directly when their entry points are missing (an editable install
    made before they were declared: re-run ``pip install -e .``)."""
    options = options or {}
    found: dict[str, MigrationTransport] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in found:
            continue  # the first distribution on sys.path wins, as for imports
        try:
            found[entry.name] = _load(entry, options.get(entry.name, {}))
        # A broken third-party plugin must not take migration (or Corral) down with it.
        except Exception:
            log.exception("migration transport %s (%s) failed to load", entry.name, entry.value)
    missing = [name for name in BUILTIN if name not in found]
    if missing:
        log.warning(
            "built-in migration transports %s are not registered as entry points (re-run "
            "`pip install -e .`); loading them directly",
            ", ".join(missing),
        )
        for name in missing:
            found[name] = BUILTIN[name](options.get(name, {}))
    return found
