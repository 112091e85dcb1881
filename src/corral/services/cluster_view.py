"""The cluster as this instance last saw it: each host's domains as runtime records.

libvirt owns runtime state, but asking every host for every domain costs as much as the
inventory is large. The view keeps, per instance and in memory, the ``DomainRecord`` of every
domain on every connected host, so that placement, the VM state filter and lookups of where a
domain is cost the same at 10,000 VMs as at 100. It is kept current:

- by the reconciler's passes (at start-up, on a host's (re)connection, periodically), which
  list a host's domains through it (``list_host``: changes events reported while the listing
  ran are kept over the older listing);
- by libvirt's lifecycle events: the one domain an event names is read again from its host
  (``on_event``; a burst of events about one domain is read once);
- by the use cases that read a domain from libvirt anyway (show, start, stop, create): what
  they read is put in (``put``), so the next decision sees it at once.

Read interface (what other services use; it never calls libvirt): ``listed``,
``host_records``, ``record``, ``where``, ``state_of``, ``states``, ``running_sum``. Records
are kept without their XML (``xml``, ``inactive_xml``): the view is for decisions and lists,
not definitions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from corral.errors import CorralError, NotFound
from corral.model.vm import VmState
from corral.services._background import BackgroundTask
from corral.services.hosts import HostService
from corral.virt import DomainEvent, DomainRecord, LibvirtHost
from corral.virt.types import EVENT_DISCONNECTED, EVENT_LIFECYCLE

log = logging.getLogger(__name__)

#: A running domain outranks another definition of the same UUID (a migration's source left
#: defined, or its paused destination).
_RUNS = frozenset({VmState.RUNNING, VmState.BLOCKED, VmState.SHUTTING_DOWN})
#: Domains that hold their host's memory and vCPUs (what placement counts).
_LIVE = frozenset({VmState.RUNNING, VmState.PAUSED, VmState.BLOCKED})


@dataclass
class RunningSum:
    """What a host's live domains (running, paused, blocked) hold together."""

    domains: int = 0
    vcpus: int = 0
    memory_mib: int = 0

    def add(self, record: DomainRecord, sign: int) -> None:
        if record.state in _LIVE:
            self.domains += sign
            self.vcpus += sign * record.vcpus
            self.memory_mib += sign * record.memory_mib


def slim(record: DomainRecord) -> DomainRecord:
    """``record`` without its XML: 10,000 definitions would weigh more than the rest."""
    if not record.xml and not record.inactive_xml:
        return record
    return dataclasses.replace(record, xml="", inactive_xml="")


class ClusterView:
    """Per-instance runtime records of every connected host's domains (see the module)."""

    def __init__(self, hosts: HostService) -> None:
        self._hosts = hosts
        #: host -> uuid -> record; a host is in here once listed since it (re)connected.
        self._records: dict[str, dict[str, DomainRecord]] = {}
        #: uuid -> the hosts that have a domain of that UUID (two during a migration).
        self._where: dict[str, set[str]] = {}
        #: host -> the sum of its live domains, kept with every change (placement reads it
        #: per host, never per domain).
        self._sums: dict[str, RunningSum] = {}
        #: host -> what events changed while a listing of it ran (None: removed); such a
        #: listing is older than they are, so they are applied again on top of it.
        self._changed: dict[str, dict[str, DomainRecord | None]] = {}
        self._listings: dict[str, int] = {}
        self._pending: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()
        self._worker = BackgroundTask("cluster view", self._refresh_loop)

    # -- read interface ----------------------------------------------------------------------
    def listed(self, host: str) -> bool:
        """Whether ``host`` is connected and its domains were listed since it connected."""
        return host in self._records and self._connected(host)

    def host_records(self, host: str) -> Mapping[str, DomainRecord] | None:
        """uuid -> record of ``host``'s domains; None when the host is not ``listed``."""
        return self._records.get(host) if self.listed(host) else None

    def where(self, uuid: str) -> list[str]:
        """The listed hosts having a domain ``uuid`` (sorted; two while it migrates)."""
        return sorted(h for h in self._where.get(uuid, ()) if self.listed(h))

    def record(self, uuid: str) -> tuple[str, DomainRecord] | None:
        """The host and record of domain ``uuid`` (the running one if on two hosts)."""
        found = [(h, self._records[h][uuid]) for h in self.where(uuid)]
        found.sort(key=lambda f: f[1].state not in _RUNS)
        return found[0] if found else None

    def state_of(self, uuid: str, host: str) -> VmState:
        """The state ``corral vm list`` shows for the VM ``uuid`` whose row says ``host``:
        its domain's state there, else where it lives now, else ``missing`` when its host
        was listed without it and ``unknown`` when its host cannot be asked."""
        records = self.host_records(host)
        if records is not None and uuid in records:
            return records[uuid].state
        elsewhere = self.record(uuid)
        if elsewhere is not None:
            return elsewhere[1].state
        return VmState.MISSING if records is not None else VmState.UNKNOWN

    def states(self, vms: Iterable[tuple[str, str]]) -> dict[str, VmState]:
        """uuid -> ``state_of`` for (uuid, host of its row) pairs."""
        return {uuid: self.state_of(uuid, host) for uuid, host in vms}

    def running_sum(self, host: str) -> RunningSum | None:
        """What ``host``'s live domains hold together; None when it is not ``listed``."""
        return self._sums.get(host) if self.listed(host) else None

    def _connected(self, host: str) -> bool:
        try:
            return self._hosts.get(host).connected
        except NotFound:
            return False

    # -- keeping it current ------------------------------------------------------------------
    def replace_host(self, host: str, records: Iterable[DomainRecord]) -> None:
        """Everything ``host`` has now (a listing of all its domains)."""
        self.forget_host(host)
        self._records[host] = {r.uuid: slim(r) for r in records}
        total = self._sums[host] = RunningSum()
        for uuid, record in self._records[host].items():
            self._where.setdefault(uuid, set()).add(host)
            total.add(record, 1)

    async def list_host(self, host: LibvirtHost, *, sweep: bool = False) -> list[DomainRecord]:
        """``host``'s domains from libvirt (whole records), and into the view; what events
        changed while the listing ran stays as they said. A ``sweep`` (the reconciler's
        periodic pass) reads again only the domains whose name, state or size changed since
        the view's records (libvirt's events keep the rest current); those it keeps have no
        XML."""
        name = host.name
        known = dict(self._records[name]) if sweep and self.listed(name) else None
        self._listings[name] = self._listings.get(name, 0) + 1
        changed = self._changed.setdefault(name, {})
        try:
            records = await host.list_domains(known)
        finally:
            self._listings[name] -= 1
            if not self._listings[name]:
                del self._listings[name]
                self._changed.pop(name, None)
        self.replace_host(name, records)
        for uuid, record in changed.items():
            if record is None:
                self._drop(name, uuid)
            else:
                self._put(name, record)
        return records

    def put(self, host: str, record: DomainRecord) -> None:
        """``host`` has domain ``record`` as it is now (ignored until the host is listed:
        one domain says nothing about the others)."""
        if host in self._changed:
            self._changed[host][record.uuid] = slim(record)
        self._put(host, record)

    def _put(self, host: str, record: DomainRecord) -> None:
        on = self._records.get(host)
        if on is not None:
            self._drop(host, record.uuid)
            on[record.uuid] = slim(record)
            self._sums[host].add(record, 1)
            self._where.setdefault(record.uuid, set()).add(host)

    def remove(self, host: str, uuid: str) -> None:
        """``host`` no longer has domain ``uuid``."""
        if host in self._changed:
            self._changed[host][uuid] = None
        self._drop(host, uuid)

    def _drop(self, host: str, uuid: str) -> None:
        on = self._records.get(host)
        old = on.pop(uuid, None) if on is not None else None
        if old is not None:
            self._sums[host].add(old, -1)
        hosts = self._where.get(uuid)
        if hosts is not None:
            hosts.discard(host)
            if not hosts:
                del self._where[uuid]

    def forget_host(self, host: str) -> None:
        """``host`` is gone or disconnected: nothing is known of it until listed again."""
        for uuid in list(self._records.get(host, {})):
            self._drop(host, uuid)
        self._records.pop(host, None)
        self._sums.pop(host, None)

    def on_event(self, event: DomainEvent) -> None:
        """A host's event (in the loop thread): read the domain it names again, soon."""
        if event.kind == EVENT_DISCONNECTED:
            self.forget_host(event.host)
        elif event.uuid is not None and event.kind == EVENT_LIFECYCLE:
            self._pending.add((event.host, event.uuid))
            self._wake.set()

    def start(self) -> None:
        self._worker.start()

    async def stop(self) -> None:
        await self._worker.stop()

    async def ensure_listed(self, host: str) -> Mapping[str, DomainRecord] | None:
        """``host_records``, listing the host first if it is connected but not listed yet
        (it connected a moment ago: the reconciler's pass is on its way); None when it is
        not connected or cannot be listed."""
        records = self.host_records(host)
        if records is not None or not self._connected(host):
            return records
        try:
            await self.list_host(self._hosts.get(host))
        except CorralError as exc:
            log.info("listing the domains of %s: %s", host, exc.message)
        return self.host_records(host)

    async def refresh(self, host: str, uuid: str) -> None:
        """Read domain ``uuid`` on ``host`` again (gone: removed)."""
        try:
            record = await self._hosts.connected(host).get_domain(uuid)
        except NotFound:
            self.remove(host, uuid)
            return
        self.put(host, record)

    async def _refresh_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            pending, self._pending = self._pending, set()
            for host, uuid in pending:
                try:
                    await self.refresh(host, uuid)
                except CorralError as exc:
                    # The host's next listing (reconnect, periodic pass) corrects it.
                    log.info("reading domain %s on %s again: %s", uuid, host, exc.message)
                # Top of a background loop: the view must outlive any one failed read.
                except Exception:
                    log.exception("reading domain %s on %s again failed", uuid, host)
