"""The narrow adapter live migration goes through: the few libvirt calls it may make, async,
on the hosts' managed connections. Nothing else in Corral migrates.

:class:`HostMigration` is one host's side (``host.migration``): the migration job of a domain
on it, and what pre-flight checks read from it. :class:`DomainMigration` is one migration of
one domain (run, watch, abort, switch to post-copy, read the outcome) from a source host to a
destination host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libvirt

from corral.model.migration import MigrationStats
from corral.virt import _migrate
from corral.virt._connection import ManagedConnection
from corral.virt._lookup import lookup
from corral.virt.transports import MigrationPlan

if TYPE_CHECKING:  # host.py builds a HostMigration per host: no import cycle at run time
    from corral.virt.host import LibvirtHost

_MIGRATABLE_XML = libvirt.VIR_DOMAIN_XML_MIGRATABLE | libvirt.VIR_DOMAIN_XML_SECURE


class HostMigration:
    """Migration calls on one host (each bounded like every call, except the migration)."""

    def __init__(self, conn: ManagedConnection, host: str) -> None:
        self._conn = conn
        self._host = host

    # -- the job of a domain on this host ----------------------------------------------------
    async def migrate(self, uuid: str, plan: MigrationPlan, destination: str) -> None:
        """Migrate domain ``uuid`` from this host (no time limit: it reports progress
        instead). Returns on success; raises MigrationFailed (the domain stays here) or
        HostUnreachable (Corral lost this host: the outcome is unknown until it reconnects)."""
        await self._conn.run(
            f"migrate domain {uuid} from {self._host} to {destination}",
            lambda c: _migrate.migrate(c, lookup(c, uuid), plan),
            bounded=False,
        )

    async def active_stats(self, uuid: str) -> MigrationStats | None:
        """The running job's statistics (None: no job)."""
        return await self._conn.run(
            f"read the migration statistics of domain {uuid}",
            lambda c: _migrate.active_stats(lookup(c, uuid)),
        )

    async def abort(self, uuid: str) -> None:
        await self._conn.run(
            f"abort the migration of domain {uuid}", lambda c: lookup(c, uuid).abortJob()
        )

    async def start_postcopy(self, uuid: str) -> None:
        await self._conn.run(
            f"switch the migration of domain {uuid} to post-copy",
            lambda c: lookup(c, uuid).migrateStartPostCopy(0),
        )

    async def completed_stats(self, uuid: str) -> MigrationStats | None:
        """Statistics of the finished job (on the destination: total time, real downtime)."""
        return await self._conn.run(
            f"read the completed migration statistics of domain {uuid}",
            lambda c: _migrate.completed_stats(lookup(c, uuid)),
        )

    async def failure_detail(self, uuid: str) -> str | None:
        """The source QEMU's own reason for the last failed migration (None: none)."""
        return await self._conn.run(
            f"read why the migration of domain {uuid} failed",
            lambda c: _migrate.failure_detail(lookup(c, uuid)),
        )

    # -- what pre-flight checks read ---------------------------------------------------------
    async def migratable_xml(self, uuid: str) -> str:
        return await self._conn.run(
            f"read the definition of domain {uuid}",
            lambda c: lookup(c, uuid).XMLDesc(_MIGRATABLE_XML),
        )

    async def cpu_problem(self, domain_xml: str) -> str | None:
        return await self._conn.run(
            f"compare the VM's CPU with host {self._host}'s",
            lambda c: _migrate.cpu_check(c, domain_xml),
        )

    async def active_networks(self) -> set[str]:
        return await self._conn.run(
            f"list the networks of host {self._host}", _migrate.active_networks
        )

    async def visible_paths(self, paths: list[str]) -> set[str]:
        return await self._conn.run(
            f"look for the VM's disks on host {self._host}",
            lambda c: _migrate.visible_paths(c, paths),
        )

    async def pool_dirs(self) -> set[str]:
        return await self._conn.run(
            f"list the storage pools of host {self._host}", _migrate.pool_dirs
        )

    async def clashes(self, name: str, uuid: str) -> list[str]:
        return await self._conn.run(
            f"look for domains named {name} on host {self._host}",
            lambda c: _migrate.domains_named(c, name, uuid),
        )


class DomainMigration:
    """Domain ``uuid`` moving from ``source`` to ``destination``."""

    def __init__(self, source: LibvirtHost, destination: LibvirtHost, uuid: str) -> None:
        self.source = source
        self.destination = destination
        self.uuid = uuid

    async def run(self, plan: MigrationPlan) -> None:
        """Migrate (see :meth:`HostMigration.migrate`)."""
        await self.source.migration.migrate(self.uuid, plan, self.destination.name)

    async def stats(self) -> MigrationStats | None:
        """The running job's statistics on the source (None: no job)."""
        return await self.source.migration.active_stats(self.uuid)

    async def abort(self) -> None:
        await self.source.migration.abort(self.uuid)

    async def start_postcopy(self) -> None:
        await self.source.migration.start_postcopy(self.uuid)

    async def completed_stats(self) -> MigrationStats | None:
        """The destination's statistics of the finished job (total time, real downtime)."""
        return await self.destination.migration.completed_stats(self.uuid)

    async def failure_detail(self) -> str | None:
        """The source QEMU's own reason for the last failed migration (None: none)."""
        return await self.source.migration.failure_detail(self.uuid)


network_names = _migrate.network_names
