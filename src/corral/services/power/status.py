"""What the Power page, ``corral power status`` and the plots show: each host's power state
and estimated watts now, and the last hours as series (utilisation per host, estimated
watts of the cluster, the migrations and switches the policy made)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from corral import store
from corral.model.placement import HostMode
from corral.model.power import HostPowerStatus, PowerDriverKind, PowerStatus
from corral.placement import host_watts
from corral.services._db import Db
from corral.services.cluster import ClusterSettingsService
from corral.services.hosts import HostService
from corral.services.power.apply import KIND as APPLY_KIND
from corral.services.power.apply import PowerApply
from corral.services.power.config import HostPowerConfig
from corral.services.power.host_power import OFF_KIND, ON_KIND
from corral.services.power.sampling import PowerSampler
from corral.store.coltypes import utcnow


@dataclass
class Move:
    at: datetime
    vm: str
    source: str
    target: str
    by: str


@dataclass
class Switch:
    at: datetime
    host: str
    on: bool
    by: str


@dataclass
class History:
    since: datetime
    until: datetime
    cpu: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)
    watts: list[tuple[datetime, float]] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    switches: list[Switch] = field(default_factory=list)


class PowerStatusView:
    def __init__(
        self,
        db: Db,
        hosts: HostService,
        cluster: ClusterSettingsService,
        config: HostPowerConfig,
        sampler: PowerSampler,
        apply: PowerApply,
    ) -> None:
        self._db = db
        self._hosts = hosts
        self._cluster = cluster
        self._config = config
        self._sampler = sampler
        self._apply = apply

    async def status(self) -> PowerStatus:
        settings = await self._cluster.get()
        models = await self._config.models()
        rows: list[HostPowerStatus] = []
        for info in await self._hosts.list_hosts():
            latest = self._sampler.latest.get(info.name)
            cpu = latest.cpu if latest and not latest.standby else None
            mode = HostMode.STANDBY if info.standby else HostMode.CONNECTED
            watts = host_watts(models[info.name], mode, cpu or 0.0)
            driver = None
            if info.power_driver:
                driver = await self._config.driver(info.name)
            rows.append(
                HostPowerStatus(
                    name=info.name,
                    status=info.status,
                    standby=info.standby,
                    driver=PowerDriverKind(info.power_driver) if info.power_driver else None,
                    can_power_on=bool(driver and driver.can_power_on),
                    can_power_off=bool(driver and driver.can_power_off),
                    cpu=cpu,
                    memory_used_mib=latest.memory_used_mib if latest and cpu is not None else None,
                    watts=watts,
                )
            )
        running = self._apply.running if self._apply.running != "starting" else None
        return PowerStatus(
            mode=settings.power_policy,
            placement_policy=settings.placement_policy.value,
            hosts=rows,
            watts=sum(r.watts for r in rows),
            running_task=running,
        )

    async def history(self, hours: float = 24) -> History:
        until = utcnow()
        since = until - timedelta(hours=hours)
        models = await self._config.models()
        samples = await self._db(lambda s: store.host_samples(s, since))
        history = History(since=since, until=until)
        by_time: dict[datetime, float] = defaultdict(float)
        for s in samples:
            model = models.get(s.host)
            if model is None:
                continue  # a host removed since
            if not s.standby:
                history.cpu.setdefault(s.host, []).append((s.at, s.cpu))
            mode = HostMode.STANDBY if s.standby else HostMode.CONNECTED
            by_time[s.at] += host_watts(model, mode, s.cpu)
        history.watts = sorted(by_time.items())
        kinds = (APPLY_KIND, ON_KIND, OFF_KIND)
        for task in await self._db(lambda s: store.tasks_of_kinds(s, kinds, since)):
            result = task.result or {}
            if task.kind == APPLY_KIND:
                for move in result.get("migrations", []):
                    at = datetime.fromisoformat(move["at"]) if move.get("at") else task.updated_at
                    history.moves.append(
                        Move(at, move["vm"], move["source"], move["target"], task.created_by)
                    )
                at = task.finished_at or task.updated_at
                for host in result.get("woken", []):
                    history.switches.append(Switch(at, host, True, task.created_by))
                for host in result.get("standby", []):
                    history.switches.append(Switch(at, host, False, task.created_by))
            elif task.state.value == "succeeded":
                at = task.finished_at or task.updated_at
                history.switches.append(
                    Switch(at, task.target, task.kind == ON_KIND, task.created_by)
                )
        return history
