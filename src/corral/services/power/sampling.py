"""The utilisation sampler: every ``interval`` seconds, each connected host's node and domain
counters become samples (``rates``), stored for the planner and the Power page's plots.

Hosts in standby get a sample that says so (for the estimated watts); unreachable hosts get
none (a gap). Once a minute the store folds raw samples older than an hour into 1-minute
means and drops what is older than a day. After each round the ``after_round`` callbacks run
(the auto mode plans there).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from corral import store
from corral.errors import CorralError
from corral.model.power import HostSample, VmSample
from corral.services._background import BackgroundTask
from corral.services._db import Db
from corral.services.events import Event, EventBus
from corral.services.hosts import HostService
from corral.services.leases import Leases
from corral.services.power.rates import CpuSource, rates
from corral.store.coltypes import utcnow
from corral.virt.types import NodeCounters

log = logging.getLogger(__name__)

DOWNSAMPLE_EVERY_S = 60.0

#: The lease of stored sampling rounds and the power policy after them.
SAMPLER_LEASE = "power-sampler"


class PowerSampler:
    def __init__(
        self, db: Db, hosts: HostService, bus: EventBus, interval_s: float, source: CpuSource
    ) -> None:
        self._db = db
        self._hosts = hosts
        self._bus = bus
        self.interval_s = interval_s
        self.source: CpuSource = source
        self._previous: dict[str, NodeCounters] = {}
        #: The newest sample of every host (the status page's "now").
        self.latest: dict[str, HostSample] = {}
        self.after_round: list[Callable[[], Awaitable[None]]] = []
        self._task = BackgroundTask("power sampler", self._loop)
        #: Several instances: samples are stored, and the policy run, where this lease is
        #: held (None: one instance, always here).
        self.leases: Leases | None = None
        self._last_downsample = 0.0

    def start(self) -> None:
        if self.leases is not None:
            self.leases.want(SAMPLER_LEASE)
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _loop(self) -> None:
        while True:
            started = time.monotonic()
            # Every instance samples (its status page's "now"); the lease holder alone stores
            # the samples and runs the power policy after them.
            try:
                holds = self.leases is None or await self.leases.holds(SAMPLER_LEASE) is not None
                await self.sample_once(keep=holds)
                if holds:
                    await self._after_round(started)
            except CorralError as exc:
                log.warning("power sampling: %s", exc.message)
            except Exception:  # top of a background loop: log, never die
                log.exception("power sampling round failed")
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def _after_round(self, started: float) -> None:
        if started - self._last_downsample >= DOWNSAMPLE_EVERY_S:
            self._last_downsample = started
            await self._db(lambda s: store.downsample(s))
        for callback in list(self.after_round):
            await callback()

    async def sample_once(
        self, now: datetime | None = None, *, keep: bool = True
    ) -> list[HostSample]:
        """One round over every host; the samples taken (also stored, with ``keep``)."""
        now = now or utcnow()
        host_rows: list[HostSample] = []
        vm_rows: list[VmSample] = []
        for host in self._hosts.all():
            name = host.name
            if self._hosts.in_standby(name):
                self._previous.pop(name, None)
                last = self.latest.get(name)
                sample = HostSample(
                    host=name,
                    at=now,
                    cpu=0.0,
                    memory_used_mib=0,
                    memory_total_mib=last.memory_total_mib if last else 0,
                    standby=True,
                )
                host_rows.append(sample)
                self.latest[name] = sample
                continue
            if not host.connected:
                self._previous.pop(name, None)
                continue
            try:
                counters = await host.node_counters()
            except CorralError as exc:
                log.info("no sample of host %s: %s", name, exc.message)
                self._previous.pop(name, None)
                continue
            before, self._previous[name] = self._previous.get(name), counters
            rate = rates(before, counters, self.source) if before is not None else None
            if rate is None:
                continue
            sample = HostSample(
                host=name,
                at=now,
                cpu=rate.cpu,
                memory_used_mib=rate.memory_used_mib,
                memory_total_mib=rate.memory_total_mib,
            )
            host_rows.append(sample)
            self.latest[name] = sample
            vm_rows.extend(
                VmSample(vm=v.name, host=name, at=now, cpu=v.cpu, memory_mib=v.memory_mib)
                for v in rate.vms
            )
        if keep and (host_rows or vm_rows):
            await self._db(lambda s: store.add_samples(s, host_rows, vm_rows))
            self._bus.publish(Event("power", "sampled", {"hosts": len(host_rows)}))
        return host_rows
