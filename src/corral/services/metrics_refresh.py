"""Keeps the gauges ``/metrics`` serves current, in the background.

A scrape only renders what is there: counting VM states asks every connected host for its
domains, and a scrape that did so itself would let anyone who can reach ``/metrics`` make
Corral call every host on demand, as often as they like. One refresh every
``metrics_interval_s`` bounds that load whatever the scrape rate.
"""

from __future__ import annotations

import asyncio
import logging

from corral.errors import CorralError
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
            await self._inventory.list_vms()
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
