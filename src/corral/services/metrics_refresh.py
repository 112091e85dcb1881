"""Keeps the gauges ``/metrics`` serves current, in the background.

A scrape only renders what is there, so that nobody who can reach ``/metrics`` makes Corral
work on demand. VM states are counted from the inventory's rows and the cluster view (which
libvirt's events keep current), not by asking every host: one refresh every
``metrics_interval_s`` costs a query, whatever the number of hosts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from corral import store
from corral.errors import CorralError
from corral.metrics import VMS_BY_STATE
from corral.model.vm import VmState
from corral.services._background import BackgroundTask
from corral.services.hosts import HostService
from corral.services.vms.inventory import VmInventory

log = logging.getLogger(__name__)


class MetricsRefresher:
    def __init__(self, inventory: VmInventory, hosts: HostService, interval_s: float) -> None:
        self._inventory = inventory
        self._hosts = hosts
        self._interval_s = interval_s
        self._task = BackgroundTask("metrics refresh", self._run)
        #: How many refreshes have completed (tests wait on it instead of sleeping).
        self.refreshes = 0

    async def refresh(self) -> None:
        """One refresh: VM states (listing VMs counts them) and certificate expiry."""
        try:
            pairs = await self._inventory.db.read(store.vm_placements)
            counts = Counter(self._inventory.view.states(pairs).values())
            for state in VmState:
                VMS_BY_STATE.labels(state.value).set(counts[state])
        except CorralError as exc:
            log.warning("metrics: counting VMs failed: %s", exc.message)
        self._hosts.update_cert_metrics()
        self.refreshes += 1

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # a failed refresh must not end the loop: the next one may work
                log.exception("metrics refresh failed")
            await asyncio.sleep(self._interval_s)
