"""Where did the VM end up? Asked when Corral could not watch a migration to its end (it lost
the source host, or it restarted): the source's libvirtd decides, Corral only looks."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from corral.errors import CorralError, NotFound
from corral.model.vm import VmState
from corral.services.hosts import HostService
from corral.virt import DomainRecord, LibvirtHost
from corral.virt.migration import DomainMigration

#: How long to wait for the hosts to answer (and a running migration to end) before giving up.
WAIT_S = 600.0
POLL_S = 1.0


@dataclass(frozen=True)
class Outcome:
    on_destination: bool
    note: str


async def _domain(host: LibvirtHost, uuid: str) -> DomainRecord | None:
    try:
        return await host.get_domain(uuid)
    except NotFound:
        return None


class OutcomeFinder:
    def __init__(self, hosts: HostService) -> None:
        self._hosts = hosts

    async def find(
        self, uuid: str, source: str, destination: str, wait_s: float = WAIT_S
    ) -> Outcome:
        deadline = time.monotonic() + wait_s
        last = "neither host answered"
        while time.monotonic() < deadline:
            try:
                answer = await self._look(uuid, source, destination)
            except CorralError as exc:
                answer, last = None, exc.message
            if isinstance(answer, Outcome):
                return answer
            if isinstance(answer, str):
                last = answer
            await asyncio.sleep(POLL_S)
        return Outcome(
            False,
            f"Corral could not tell where the VM is after {wait_s:g} s ({last}); the "
            "reconciler will place it once both hosts answer: check `corral vm show`",
        )

    async def _look(self, uuid: str, source: str, destination: str) -> Outcome | str:
        src = self._hosts.get(source)
        dst = self._hosts.get(destination)
        if not src.connected:
            return f"source host {source} is not connected"
        try:
            running = await DomainMigration(src, dst, uuid).stats() is not None
        except NotFound:
            running = False  # gone from the source: it moved (or vanished)
        if running:
            return f"the migration is still running on {source}"
        on_source = await _domain(src, uuid)
        if on_source is not None:
            return Outcome(
                False,
                f"the migration did not complete: the VM is still on {source} "
                f"({on_source.state.value})",
            )
        if not dst.connected:
            return f"destination host {destination} is not connected"
        on_destination = await _domain(dst, uuid)
        if on_destination is None:
            return f"the VM is on neither {source} nor {destination} (yet)"
        if on_destination.state not in (VmState.RUNNING, VmState.PAUSED, VmState.BLOCKED):
            return Outcome(
                True,
                f"the VM moved to {destination} but is {on_destination.state.value} there",
            )
        return Outcome(True, f"the migration completed: the VM runs on {destination}")
