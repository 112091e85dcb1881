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

A stale beat proves that only if the beater ran when the host went silent. A beat that
stopped for another reason while the host lived (its beater killed and not yet started again,
or writing to another directory after the domain changed) proves nothing, and taking it for an
expired lease restarted a VM that still ran (found by a full test run). So a lease is *armed*
only when the beat was seen moving in the directory Corral reads, after the host last came
back, and until no earlier than ``DETECT_S`` before Corral last heard the host (libvirt's
keep-alive takes up to that long to notice a silent host).

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
from corral.virt._connection import KEEPALIVE_COUNT, KEEPALIVE_INTERVAL_S

log = logging.getLogger(__name__)

#: Beyond ``fence_after_s``: the host's last kill, and a beat written just before the cut.
MARGIN_S = 5.0
#: How long before Corral notices a silent host its beat may have stopped for the lease to
#: count: libvirt's keep-alive (interval times count, plus one interval) and a margin.
DETECT_S = KEEPALIVE_INTERVAL_S * (KEEPALIVE_COUNT + 1) + 5.0


@dataclass
class Beat:
    """One host's beat as Corral watched it, by Corral's own clock (monotonic)."""

    seq: float
    #: When Corral last saw its sequence number change.
    moved_at: float
    #: Whether it was seen changing since the host last came back (see the module's doc).
    moving: bool = False


@dataclass(frozen=True)
class Lease:
    """What the heartbeat says about a silent host."""

    #: None: no heartbeat seen for it (nothing can be concluded).
    still_s: float | None
    expired: bool
    reason: str


def judge(
    beat: Beat | None, last_heard: float | None, now: float, fence_after_s: float, missing: str
) -> Lease:
    """What ``beat`` proves about a host Corral last heard at ``last_heard`` (monotonic;
    None: not since this instance started)."""
    if beat is None:
        return Lease(None, False, missing)
    still = now - beat.moved_at
    limit = fence_after_s + MARGIN_S
    if still < limit:
        return Lease(still, False, f"its storage heartbeat moved {still:.0f} s ago: it is "
                     "alive on storage but unreachable by Corral, so its VMs are not "
                     "restarted elsewhere")  # fmt: skip
    unproven = "no self-fence is known to have run there, so its stale heartbeat proves nothing"
    if not beat.moving:
        return Lease(still, False, "its storage heartbeat was not seen moving since it last "
                     f"came back: {unproven}")  # fmt: skip
    if last_heard is None:
        why = "this Corral instance never heard it answer, so it cannot tell whether its "
        return Lease(still, False, why + f"heartbeat ran until it went silent: {unproven}")
    if beat.moved_at < last_heard - DETECT_S:
        before = last_heard - beat.moved_at
        return Lease(still, False, f"its storage heartbeat had stopped {before:.0f} s before "
                     f"Corral last heard it: {unproven}")  # fmt: skip
    return Lease(still, True, f"its storage heartbeat stopped {still:.0f} s ago (a host "
                 f"without storage kills its own QEMUs after {fence_after_s:g} s): "
                 "its VMs' leases expired")  # fmt: skip


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
        #: host -> its beat in ``_directory``
        self._beats: dict[str, Beat] = {}
        self._directory: str | None = None
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
        directory = await self.directory()
        if directory != self._directory:
            # Beats in another directory say nothing about the beaters' new one.
            self._beats.clear()
            self._directory = directory
        if directory is None:
            return
        beats = await self._read(directory)
        if beats is None or directory != self._directory:
            return
        now = time.monotonic()
        for name in set(self._beats) - set(beats):
            del self._beats[name]  # its beat file is gone: nothing to conclude from
        for name, written in beats.items():
            seq = written["seq"]
            known = self._beats.get(name)
            if known is None:
                self._beats[name] = Beat(seq, now)
            elif known.seq != seq:
                known.seq, known.moved_at, known.moving = seq, now, True

    def describe(self, name: str) -> str | None:
        """``name``'s beat in a word (see ``HostHa.heartbeat``)."""
        known = self._beats.get(name)
        if known is None:
            return None
        if time.monotonic() - known.moved_at >= self.fence_after_s + MARGIN_S:
            return "still"
        return "moving" if known.moving else "seen"

    def came_back(self, name: str) -> None:
        """``name`` answers again (connected, powered on): its lease is armed again only once
        its beat is seen moving after this."""
        known = self._beats.get(name)
        if known is not None:
            known.moving = False

    async def _read(self, directory: str) -> dict[str, dict[str, float]] | None:
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

    def lease(self, name: str, last_heard: float | None) -> Lease:
        """Whether ``name``'s lease expired; ``last_heard``: when Corral last heard it."""
        missing = self.problems.get(name, "no storage heartbeat from it was ever seen")
        return judge(self._beats.get(name), last_heard, time.monotonic(), self.fence_after_s,
                     missing)  # fmt: skip
