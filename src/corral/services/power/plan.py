"""``corral power plan``: the plan for the cluster as it is now, kept by id for an hour so that
the plan a person reviewed is the one ``corral power apply`` checks (and re-plans if stale)."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from corral.errors import CorralError, NotFound
from corral.model.placement import PolicySettings
from corral.model.power import PowerPlan, PowerPolicyMode
from corral.placement import plan_consolidation
from corral.services.cluster import ClusterSettingsService
from corral.services.hosts import HostService
from corral.services.power.config import HostPowerConfig
from corral.services.power.drivers import PowerDriver
from corral.services.power.snapshot import Snapshot, SnapshotBuilder, assemble
from corral.store.coltypes import utcnow

KEEP_PLANS = 50
PLAN_LIFETIME = timedelta(hours=1)


@dataclass
class Situation:
    """A snapshot with the settings it was taken under and the hosts' drivers."""

    snapshot: Snapshot
    settings: PolicySettings
    mode: PowerPolicyMode
    drivers: dict[str, PowerDriver]
    now: datetime


class PowerPlanner:
    def __init__(
        self,
        builder: SnapshotBuilder,
        config: HostPowerConfig,
        cluster: ClusterSettingsService,
        hosts: HostService,
    ) -> None:
        self._builder = builder
        self._config = config
        self._cluster = cluster
        self._hosts = hosts
        self._plans: OrderedDict[str, PowerPlan] = OrderedDict()

    async def drivers(self) -> tuple[dict[str, PowerDriver], list[str]]:
        """Every host's driver; a driver that cannot be built is a note, not a failure."""
        drivers: dict[str, PowerDriver] = {}
        notes: list[str] = []
        for host in self._hosts.all():
            if host.name not in self._hosts.power_drivers:
                continue
            try:
                driver = await self._config.driver(host.name)
            except CorralError as exc:
                notes.append(f"{host.name}'s power driver is unusable: {exc.message}")
                continue
            if driver is not None:
                drivers[host.name] = driver
        return drivers, notes

    async def situation(self, *, consolidation: bool = True) -> Situation:
        cluster = await self._cluster.get()
        settings = cluster.policy()
        drivers, notes = await self.drivers()
        models = await self._config.models()
        now = utcnow()
        facts = await self._builder.facts(
            drivers, models, settings, now, consolidation=consolidation
        )
        snapshot = assemble(facts, settings, now, consolidation=consolidation)
        snapshot.notes[:0] = notes
        return Situation(snapshot, settings, cluster.power_policy, drivers, now)

    def plan_for(self, situation: Situation) -> PowerPlan:
        snap = situation.snapshot
        plan = plan_consolidation(snap.cluster, snap.samples, situation.now, situation.settings)
        made = PowerPlan(
            id=uuid.uuid4().hex,
            created_at=situation.now,
            mode=situation.mode,
            plan=plan,
            notes=list(snap.notes),
        )
        self._keep(made)
        return made

    async def plan(self) -> PowerPlan:
        return self.plan_for(await self.situation())

    def _keep(self, plan: PowerPlan) -> None:
        self._plans[plan.id] = plan
        while len(self._plans) > KEEP_PLANS:
            self._plans.popitem(last=False)

    def get(self, plan_id: str) -> PowerPlan:
        plan = self._plans.get(plan_id)
        if plan is None or utcnow() - plan.created_at > PLAN_LIFETIME:
            raise NotFound(
                f"plan_id: no plan {plan_id} (plans are kept for an hour, and not across a "
                "restart): get a new one with `corral power plan`"
            )
        return plan
