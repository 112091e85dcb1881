"""The narrow adapter live migration goes through: the few libvirt calls it may make, async,
on the hosts' managed connections (``LibvirtHost``). Nothing else in Corral migrates.

:class:`DomainMigration` is one migration of one domain (run, watch, abort, switch to
post-copy, read the outcome); :class:`MigrationProbe` reads what pre-flight checks need from
a destination.
"""

from __future__ import annotations

import libvirt

from corral.model.migration import MigrationStats
from corral.virt import _migrate
from corral.virt._lookup import lookup as _lookup
from corral.virt.host import LibvirtHost
from corral.virt.transports import MigrationPlan

_MIGRATABLE_XML = libvirt.VIR_DOMAIN_XML_MIGRATABLE | libvirt.VIR_DOMAIN_XML_SECURE


class DomainMigration:
    """Domain ``uuid`` moving from ``source`` to ``destination``."""

    def __init__(self, source: LibvirtHost, destination: LibvirtHost, uuid: str) -> None:
        self.source = source
        self.destination = destination
        self.uuid = uuid

    async def run(self, plan: MigrationPlan) -> None:
        """Migrate (no time limit: it reports progress instead). Returns on success; raises
        MigrationFailed (the domain stays on the source) or HostUnreachable (Corral lost the
        source: the outcome is unknown until it reconnects)."""
        await self.source._conn.run(
            f"migrate domain {self.uuid} from {self.source.name} to {self.destination.name}",
            lambda c: _migrate.migrate(c, _lookup(c, self.uuid), plan),
            bounded=False,
        )

    async def stats(self) -> MigrationStats | None:
        """The running job's statistics on the source (None: no job)."""
        return await self.source._conn.run(
            f"read the migration statistics of domain {self.uuid}",
            lambda c: _migrate.active_stats(_lookup(c, self.uuid)),
        )

    async def abort(self) -> None:
        await self.source._conn.run(
            f"abort the migration of domain {self.uuid}",
            lambda c: _lookup(c, self.uuid).abortJob(),
        )

    async def start_postcopy(self) -> None:
        await self.source._conn.run(
            f"switch the migration of domain {self.uuid} to post-copy",
            lambda c: _lookup(c, self.uuid).migrateStartPostCopy(0),
        )

    async def completed_stats(self) -> MigrationStats | None:
        """The destination's statistics of the finished job (total time, real downtime)."""
        return await self.destination._conn.run(
            f"read the completed migration statistics of domain {self.uuid}",
            lambda c: _migrate.completed_stats(_lookup(c, self.uuid)),
        )

    async def failure_detail(self) -> str | None:
        """The source QEMU's own reason for the last failed migration (None: none)."""
        return await self.source._conn.run(
            f"read why the migration of domain {self.uuid} failed",
            lambda c: _migrate.failure_detail(_lookup(c, self.uuid)),
        )


class MigrationProbe:
    """What pre-flight checks read from hosts (one call each, bounded like every call)."""

    @staticmethod
    async def migratable_xml(host: LibvirtHost, uuid: str) -> str:
        return await host._conn.run(
            f"read the definition of domain {uuid}",
            lambda c: _lookup(c, uuid).XMLDesc(_MIGRATABLE_XML),
        )

    @staticmethod
    async def cpu_problem(host: LibvirtHost, domain_xml: str) -> str | None:
        return await host._conn.run(
            f"compare the VM's CPU with host {host.name}'s",
            lambda c: _migrate.cpu_check(c, domain_xml),
        )

    @staticmethod
    async def active_networks(host: LibvirtHost) -> set[str]:
        return await host._conn.run(
            f"list the networks of host {host.name}", _migrate.active_networks
        )

    @staticmethod
    async def visible_paths(host: LibvirtHost, paths: list[str]) -> set[str]:
        return await host._conn.run(
            f"look for the VM's disks on host {host.name}",
            lambda c: _migrate.visible_paths(c, paths),
        )

    @staticmethod
    async def pool_dirs(host: LibvirtHost) -> set[str]:
        return await host._conn.run(
            f"list the storage pools of host {host.name}", _migrate.pool_dirs
        )

    @staticmethod
    async def clashes(host: LibvirtHost, name: str, uuid: str) -> list[str]:
        return await host._conn.run(
            f"look for domains named {name} on host {host.name}",
            lambda c: _migrate.domains_named(c, name, uuid),
        )


network_names = _migrate.network_names
