"""Live migration and evacuation, one module per use case.

machine.py    the state machine: phases (IntEnum), the transition table, the persisted record
preflight.py  checks before anything moves (pure refusals + gathering the facts)
migrate.py    ``corral vm migrate``: the task that drives the state machine
outcome.py    where a VM ended up when Corral could not watch (lost the source, restarted)
evacuate.py   ``corral host evacuate``: every VM off a host, then maintenance
explain.py    a failure in words, with the source QEMU's and libvirtd's evidence
host_logs.py  the source libvirtd's error lines over SSH (best effort)
readiness.py  a transport's prerequisites, checked by commands on the source host over SSH
transport_list.py  the transports, and whether each works between the hosts

Only ``corral.virt.migration`` talks to libvirt for them (the narrow adapter).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corral.model.task import TaskInfo
from corral.services.audit import AuditService
from corral.services.cluster import ClusterSettingsService
from corral.services.locks import OperationLocks
from corral.services.migrations.evacuate import HostEvacuation
from corral.services.migrations.host_logs import HostLogs
from corral.services.migrations.migrate import KIND as MIGRATE_KIND
from corral.services.migrations.migrate import VmMigration
from corral.services.migrations.readiness import SourceCommands, TransportReadiness
from corral.services.migrations.transport_list import TransportList
from corral.services.tasks import TaskService
from corral.services.vms.inventory import VmInventory
from corral.virt.transports import MigrationTransport

__all__ = ["MIGRATE_KIND", "HostEvacuation", "MigrationServices", "VmMigration"]


@dataclass(frozen=True)
class MigrationServices:
    migrate: VmMigration
    evacuate: HostEvacuation
    transports: TransportList

    @classmethod
    def build(
        cls,
        inventory: VmInventory,
        tasks: TaskService,
        audit: AuditService,
        locks: OperationLocks,
        transports: dict[str, MigrationTransport],
        cluster: ClusterSettingsService,
        data_dir: Path,
    ) -> MigrationServices:
        known_hosts = data_dir / "ssh" / "known_hosts"
        logs = HostLogs(inventory.db, known_hosts)
        readiness = TransportReadiness(SourceCommands(inventory.db, known_hosts))
        migrate = VmMigration(inventory, tasks, audit, locks, transports, cluster, logs, readiness)
        evacuate = HostEvacuation(inventory, inventory.hosts, tasks, audit, migrate)
        listing = TransportList(migrate, inventory.hosts, readiness)
        return cls(migrate=migrate, evacuate=evacuate, transports=listing)

    async def resume(self, task: TaskInfo) -> None:
        """Resume a task of ours a previous manager process left running."""
        if task.kind == MIGRATE_KIND:
            await self.migrate.resume(task)
