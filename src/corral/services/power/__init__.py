"""Power-aware placement and host power, one module per use case.

    sampling.py    the utilisation sampler (node and domain counters → stored samples)
    rates.py       two readings → utilisations (pure)
    snapshot.py    the cluster as the planner sees it (ClusterState + samples + notes)
    plan.py        ``corral power plan``: plans with ids
    apply.py       ``corral power apply``: a plan as a task (re-planned when stale)
    switch.py      one host into standby or out of it, checked against libvirt
    host_power.py  ``corral host power-on|power-off``
    config.py      ``corral host power``: drivers and power models (secrets sealed)
    secrets.py     Fernet encryption of driver secrets at rest
    auto.py        the auto mode
    placement.py   the host for ``vm create`` without ``--host``
    status.py      state now and history for the Power page and ``corral power status``
    drivers/       ipmi, wol, suspend, ssh behind one interface

The planning itself is ``corral.placement`` (pure); this package feeds it and carries out
what it decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corral.config import Settings
from corral.services._db import Db
from corral.services.audit import AuditService
from corral.services.cluster import ClusterSettingsService
from corral.services.events import EventBus
from corral.services.hosts import HostService
from corral.services.migrations import VmMigration
from corral.services.power.apply import KIND as APPLY_KIND
from corral.services.power.apply import PowerApply
from corral.services.power.auto import AutoPower
from corral.services.power.config import HostPowerConfig
from corral.services.power.host_power import HostPowerTasks
from corral.services.power.placement import InitialPlacement
from corral.services.power.plan import PowerPlanner
from corral.services.power.sampling import PowerSampler
from corral.services.power.secrets import SecretBox
from corral.services.power.snapshot import SnapshotBuilder
from corral.services.power.status import PowerStatusView
from corral.services.power.switch import HostSwitch
from corral.services.tasks import TaskService
from corral.services.vms.inventory import VmInventory

__all__ = ["APPLY_KIND", "PowerServices"]


@dataclass(frozen=True)
class PowerServices:
    config: HostPowerConfig
    sampler: PowerSampler
    planner: PowerPlanner
    apply: PowerApply
    hosts: HostPowerTasks
    auto: AutoPower
    placement: InitialPlacement
    status: PowerStatusView

    @classmethod
    def build(
        cls,
        settings: Settings,
        db: Db,
        hosts: HostService,
        inventory: VmInventory,
        tasks: TaskService,
        audit: AuditService,
        bus: EventBus,
        cluster: ClusterSettingsService,
        migration: VmMigration,
        data_dir: Path,
    ) -> PowerServices:
        config = HostPowerConfig(
            db, hosts, cluster, SecretBox(data_dir), data_dir / "ssh" / "known_hosts"
        )
        sampler = PowerSampler(
            db, hosts, bus, settings.power_sample_interval_s, settings.power_cpu_source
        )
        planner = PowerPlanner(SnapshotBuilder(db, hosts, inventory), config, cluster, hosts)
        switch = HostSwitch(
            hosts, config, audit, settings.power_wake_timeout_s, settings.power_off_timeout_s
        )
        apply = PowerApply(planner, switch, migration, tasks, audit, db)
        auto = AutoPower(cluster, planner, apply)
        sampler.after_round.append(auto.tick_quietly)
        return cls(
            config=config,
            sampler=sampler,
            planner=planner,
            apply=apply,
            hosts=HostPowerTasks(hosts, switch, apply, db),
            auto=auto,
            placement=InitialPlacement(planner),
            status=PowerStatusView(db, hosts, cluster, config, sampler, apply),
        )

    async def start(self) -> None:
        await self.config.load()
        self.sampler.start()

    async def stop(self) -> None:
        await self.sampler.stop()
