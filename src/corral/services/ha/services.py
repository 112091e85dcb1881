"""The HA parts, built together."""

from __future__ import annotations

from dataclasses import dataclass

from corral.config import Settings
from corral.services._db import Db
from corral.services.audit import AuditService
from corral.services.events import EventBus
from corral.services.ha.definitions import HaDefinitions
from corral.services.ha.fencing import Fencing
from corral.services.ha.heartbeats import Heartbeats
from corral.services.ha.monitor import HaMonitor
from corral.services.ha.restart import HaRestart
from corral.services.host_agents import HostAgents
from corral.services.hosts import HostService
from corral.services.power.config import HostPowerConfig
from corral.services.storage.domains import StorageDomains
from corral.services.vms.inventory import VmInventory


@dataclass
class HaServices:
    definitions: HaDefinitions
    restart: HaRestart
    monitor: HaMonitor

    @classmethod
    def build(
        cls,
        db: Db,
        hosts: HostService,
        inventory: VmInventory,
        storage: StorageDomains,
        audit: AuditService,
        bus: EventBus,
        power: HostPowerConfig,
        settings: Settings,
        agents: HostAgents,
    ) -> HaServices:
        definitions = HaDefinitions(db, inventory, hosts, storage, audit)
        restart = HaRestart(db, hosts, storage, bus)
        monitor = HaMonitor(
            db,
            hosts,
            definitions,
            Fencing(power, hosts),
            restart,
            audit,
            bus,
            interval_s=settings.ha_interval_s,
            suspect_after_s=settings.ha_suspect_after_s,
        )
        monitor.heartbeats = Heartbeats(
            db, hosts, agents, fence_after_s=settings.ha_self_fence_after_s
        )
        return cls(definitions, restart, monitor)
