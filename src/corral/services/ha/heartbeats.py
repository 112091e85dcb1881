"""Storage heartbeats: telling a host that is alive but cut from Corral from a dead one.

Every enrolled host with HA work runs the agent's heartbeat (``ha.beat``, see
:mod:`corral.hostagent.haops`) on the first ``shared-dir`` storage domain (by name): it writes
a beat every second and kills its own QEMUs once it has written none for ``fence_after_s``.
Corral reads the beats (from its own mount of the domain when it has one, else through a
connected host's agent) and watches each host's sequence number move by its own clock, so
the hosts' clocks do not matter:

- a silent host whose beat still moves is alive on storage and unreachable by Corral: its VMs
  are not restarted elsewhere;
- a beat that has not moved for ``fence_after_s`` plus a margin means the host is dead or has
  killed its QEMUs by itself: its VMs' leases have expired, and they may run elsewhere.

The manager's own host never runs one: its self-fence would kill every QEMU on the machine.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from corral import store
from corral.errors import Conflict, CorralError
from corral.hostagent.haops import read_beats
from corral.model.storage_domain import StorageDomainKind
from corral.services._db import Db
from corral.services.host_agents import HostAgents
from corral.services.hosts import HostService

log = logging.getLogger(__name__)

#: Beyond ``fence_after_s``: the host's last kill, and a beat written just before the cut.
MARGIN_S = 5.0


@dataclass(frozen=True)
class Lease:
    """What the heartbeat says about a silent host."""

    #: None: no heartbeat seen for it (nothing can be concluded).
    still_s: float | None
    expired: bool
    reason: str


def _read_local(directory: str) -> dict[str, dict[str, float]] | None:
    """The beats through this machine's own mount of the domain (None: not mounted here)."""
    path = Path(directory)
    return read_beats(path) if path.is_dir() else None


class Heartbeats:
    def __init__(
        self,
        db: Db,
        hosts: HostService,
        agents: HostAgents,
        *,
        interval_s: float = 1.0,
        fence_after_s: float = 20.0,
    ) -> None:
        self._db = db
        self._hosts = hosts
        self._agents = agents
        self.interval_s = interval_s
        self.fence_after_s = fence_after_s
        #: host -> (its last sequence number, when Corral saw it change: monotonic)
        self._moved: dict[str, tuple[float, float]] = {}
        #: Why a host has no heartbeat (shown in its HA reason).
        self.problems: dict[str, str] = {}

    async def directory(self) -> str | None:
        domains = await self._db.read(store.list_domains)
        for domain in sorted(domains, key=lambda d: d.name):
            if domain.kind is StorageDomainKind.SHARED_DIR and domain.settings.get("path"):
                return domain.settings["path"]
        return None

    async def ensure(self, hosts: set[str]) -> None:
        """Start (or update) the heartbeat on each of ``hosts`` that is connected and reached
        over SSH; problems are kept per host."""
        directory = await self.directory()
        if directory is None:
            for name in hosts:
                self.problems[name] = "no shared-dir storage domain to beat on"
            return
        for name in sorted(hosts):
            if not self._hosts.get(name).connected:
                continue
            try:
                access = await self._agents.access(name)
                if access.local:
                    self.problems[name] = "the manager's own host runs no heartbeat"
                    continue
                await self._agents.call_with(
                    access,
                    "ha.beat",
                    {"dir": directory, "host": name, "interval_s": self.interval_s,
                     "fence_after_s": self.fence_after_s},
                    timeout_s=30,
                )  # fmt: skip
                self.problems.pop(name, None)
            except (Conflict, CorralError) as exc:
                self.problems[name] = f"its heartbeat could not be started: {exc.message}"
                log.warning("HA heartbeat on %s: %s", name, exc.message)

    async def observe(self) -> None:
        """Read every host's beat now and note whose moved."""
        beats = await self._read()
        if beats is None:
            return
        now = time.monotonic()
        for name, beat in beats.items():
            seq = beat["seq"]
            last = self._moved.get(name)
            if last is None or last[0] != seq:
                self._moved[name] = (seq, now)

    async def _read(self) -> dict[str, dict[str, float]] | None:
        directory = await self.directory()
        if directory is None:
            return None
        local = await asyncio.to_thread(_read_local, directory)
        if local is not None:
            return local
        for host in self._hosts.all():
            if not host.connected:
                continue
            try:
                answer = await self._agents.call(host.name, "ha.beats", {"dir": directory},
                                                 timeout_s=10)  # fmt: skip
            except CorralError:
                continue
            beats: dict[str, dict[str, float]] = answer.get("beats", {})
            return beats
        return None

    def lease(self, name: str) -> Lease:
        seen = self._moved.get(name)
        if seen is None:
            why = self.problems.get(name, "no storage heartbeat from it was ever seen")
            return Lease(None, False, why)
        still = time.monotonic() - seen[1]
        limit = self.fence_after_s + MARGIN_S
        if still < limit:
            return Lease(still, False, f"its storage heartbeat moved {still:.0f} s ago: it is "
                         "alive on storage but unreachable by Corral, so its VMs are not "
                         "restarted elsewhere")  # fmt: skip
        return Lease(still, True, f"its storage heartbeat stopped {still:.0f} s ago (a host "
                     f"without storage kills its own QEMUs after {self.fence_after_s:g} s): "
                     "its VMs' leases expired")  # fmt: skip
