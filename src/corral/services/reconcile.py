"""Bring Corral's inventory in line with libvirt, which owns runtime state.

Runs at start-up, whenever a host (re)connects or reports a domain defined/undefined, and
periodically. Domains Corral did not create are *adopted*; a VM whose domain shows up on
another host (moved with ``virsh migrate`` or virt-manager) follows it there on libvirt's
event; rows whose domain is on no connected host are marked missing (un-marked if it comes
back).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from functools import partial

from sqlalchemy.orm import Session

from corral import store
from corral.errors import Conflict, CorralError, NotFound
from corral.model.common import is_name
from corral.model.vm import VmState
from corral.services._db import Db
from corral.services.cluster_view import ClusterView
from corral.services.events import Event, EventBus
from corral.services.hosts import HostService
from corral.services.leases import Leases
from corral.services.locks import OperationLocks
from corral.services.whereabouts import Whereabouts
from corral.virt import DomainEvent, DomainRecord, LibvirtHost

log = logging.getLogger(__name__)

_INVENTORY_DETAILS = {"defined", "undefined"}
_START_STOP = {"started", "stopped", "crashed"}
#: Events after which a domain may live on another host than its row says: a migration's
#: destination defines, starts or resumes it, its source stops and undefines it.
_WHEREABOUTS = {"defined", "undefined", "started", "resumed", "stopped"}
_ALIVE = {VmState.RUNNING, VmState.PAUSED, VmState.SHUTTING_DOWN, VmState.BLOCKED}


#: The periodic sweep visits its hosts in slices at most this often (seconds).
SWEEP_TICK_S = 1.0


def sweep_slice(hosts: int, interval_s: float) -> tuple[int, float]:
    """How many hosts each tick of the periodic sweep visits, and the seconds between ticks,
    so that a sweep of ``hosts`` hosts takes ``interval_s``: at 500 hosts and 30 s, 17 hosts
    a second rather than all 500 (and 10,000 domains) in one burst that stalls requests."""
    ticks = max(1, min(hosts, int(interval_s / SWEEP_TICK_S)))
    return -(-max(hosts, 1) // ticks), interval_s / ticks


class Reconciler:
    def __init__(
        self,
        db: Db,
        hosts: HostService,
        bus: EventBus,
        locks: OperationLocks,
        interval_s: float,
        view: ClusterView,
    ) -> None:
        self._db = db
        #: Each pass hands the host's listing to the cluster view, events go to it too.
        self.view = view
        self._locks = locks
        self._hosts = hosts
        self._bus = bus
        self._interval_s = interval_s
        self._where = Whereabouts(db, hosts, view, bus)
        self._pending: set[str] = set()
        #: Domains to follow, with the hosts whose events named them.
        self._pending_uuids: dict[str, set[str]] = {}
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()
        #: Leases of the per-host passes (None: this process is the only instance): with
        #: several instances one holds each host's, and only it writes what a pass finds.
        self.leases: Leases | None = None
        #: Hooks run with each host that connects (storage domain checks, networks): the
        #: host service's list, which runs them at once on add and start-up, after a retry and
        #: after a reconnect.
        self.on_host_connected = hosts.on_connected

    def on_event(self, event: DomainEvent) -> None:
        """Called by hosts in the loop thread: publish, and schedule a reconcile when the
        inventory may have changed."""
        self.view.on_event(event)
        self._bus.publish(
            Event(
                "vm" if event.uuid else "host",
                event.detail if event.uuid else event.kind,
                {
                    "host": event.host,
                    "uuid": event.uuid,
                    "name": event.name,
                    "reason": event.reason,
                },
            )
        )
        if event.kind == "connected" or event.detail in _INVENTORY_DETAILS:
            self._pending.add(event.host)
            self._wake.set()
        if event.uuid and event.detail in _WHEREABOUTS:
            self._pending_uuids.setdefault(event.uuid, set()).add(event.host)
            self._wake.set()
        if event.uuid and event.detail in _START_STOP:
            at = datetime.now(UTC) if event.detail == "started" else None
            job = asyncio.create_task(self._note_started(event.uuid, at))
            self._jobs.add(job)
            job.add_done_callback(self._jobs.discard)

    async def _note_started(self, uuid: str, at: datetime | None) -> None:
        # Nobody awaits this job: it ends quietly (the database away, say), never with an
        # exception left for asyncio to complain about.
        try:
            await self._db(partial(store.set_vm_started, uuid=uuid, at=at))
        except CorralError as exc:
            log.warning("start time of domain %s not stored: %s", uuid, exc.message)

    def start(self) -> None:
        self.view.start()
        self._loop_task = asyncio.create_task(self._run(), name="reconciler")

    async def stop(self) -> None:
        await self.view.stop()
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        await asyncio.gather(*self._jobs, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        sweep: list[str] = []  # hosts the current periodic sweep has yet to visit
        next_tick = loop.time() + self._interval_s  # start-up ran a whole pass already
        while True:
            try:
                async with asyncio.timeout_at(next_tick):
                    await self._wake.wait()
            except TimeoutError:
                pass
            hosts = set(self._pending)
            uuids, self._pending_uuids = self._pending_uuids, {}
            self._wake.clear()
            self._pending.clear()
            ticked = loop.time() >= next_tick
            if ticked:
                if not sweep:
                    sweep = sorted(h.name for h in self._hosts.all())
                size, tick_s = sweep_slice(len(self._hosts.all()), self._interval_s)
                hosts.update(sweep[:size])
                del sweep[:size]
            started = loop.time()
            try:
                await self._pass(hosts, uuids)
            # Top of a background loop: one failed pass (say SQLite answering "database is
            # locked" under load) must not end reconciling for good; the next pass retries.
            except Exception:
                log.exception("reconcile pass failed")
            if ticked:
                # Never back to back: a slice that took longer than its share of the interval
                # is followed by as long a rest (the sweep then takes longer, requests don't).
                took = loop.time() - started
                next_tick = loop.time() + max(tick_s - took, took)

    async def _pass(self, hosts: set[str], uuids: dict[str, set[str]]) -> None:
        # Moves first: a host's reconcile after its UNDEFINED event then no longer holds
        # the row of a VM that migrated away, instead of calling it missing.
        for uuid, named_by in uuids.items():
            try:
                await self.follow(uuid, named_by)
            except CorralError as exc:
                log.warning("finding where domain %s went failed: %s", uuid, exc.message)
        for name in hosts:
            try:
                await self.reconcile_host(self._hosts.get(name))
            except CorralError as exc:
                log.warning("reconcile of host %s failed: %s", name, exc.message)

    async def reconcile_all(self) -> None:
        for host in self._hosts.all():
            if host.connected:
                try:
                    await self.reconcile_host(host)
                except CorralError as exc:
                    log.warning("reconcile of host %s failed: %s", host.name, exc.message)

    async def reconcile_host(self, host: LibvirtHost) -> None:
        if not host.connected:
            return
        # Rows first: a VM created between the two reads then has its domain in ``records``,
        # instead of a fresh row looking missing against a stale domain list.
        rows = await self._db.read(lambda s: store.list_vms(s, host=host.name))
        records = {r.uuid: r for r in await self.view.list_host(host, sweep=True)}
        token = await self._pass_token(host.name)
        if token is None:
            return  # another instance reconciles this host (this one's view is current)
        known = {row.uuid for row in rows}
        # Operations under way on any instance (a VM being created has its domain before its
        # row; one being migrated or deleted may be on no host for a moment).
        busy = await self._locks.busy_anywhere()
        for row in rows:
            try:
                record = records.get(row.uuid)
                if record is not None and row.started_at and record.state not in _ALIVE:
                    # Stopped while Corral was not looking.
                    await self._db(partial(store.set_vm_started, uuid=row.uuid, at=None))
                if record is not None and row.missing_since is not None:
                    await self._db(partial(store.clear_vm_missing, name=row.name))
                elif row.uuid not in records:
                    await self._vanished(host, row, token, busy)
            except NotFound:
                pass  # deleted through Corral meanwhile
        for uuid, record in records.items():
            # A domain being created or cloned right now is not foreign: its row is on the way.
            if uuid not in known and record.name not in busy and not self._locks.busy(record.name):
                await self._adopt(host, record, token)

    async def _pass_token(self, host: str) -> int | None:
        """The fencing token of this instance's lease on ``host``'s passes (None: another
        instance holds it; 0: no leases, one instance)."""
        if self.leases is None:
            return 0
        return await self.leases.holds(f"reconcile:{host}")

    async def _write(self, host: str, token: int, fn: Callable[[Session], object]) -> None:
        """A write of a pass: refused (LeaseLost) once another instance took the host over."""
        if self.leases is None:
            await self._db(fn)
        else:
            await self.leases.write(f"reconcile:{host}", token, fn)

    async def follow(self, uuid: str, named_by: Collection[str] = ()) -> None:
        """Move the VM of domain ``uuid`` to the host it lives on now, if that changed
        (``named_by``: hosts that just reported it, asked whatever the view says)."""
        await self._where.resolve(uuid, named_by)

    async def _vanished(
        self, host: LibvirtHost, row: store.Vm, token: int, busy: Collection[str]
    ) -> None:
        """``row``'s domain is not on ``host``: on another host it moved there, on none the VM
        is missing (unless a Corral operation on it is under way)."""
        if await self._where.follow(row, None) is not None:
            return  # moved (and announced)
        if row.missing_since is None and row.name not in busy and not self._locks.busy(row.name):
            log.warning("VM %s vanished from host %s (and no connected host has it)",
                        row.name, host.name)  # fmt: skip
            await self._write(host.name, token, partial(store.mark_vm_missing, name=row.name))

    async def _adopt(self, host: LibvirtHost, record: DomainRecord, token: int) -> None:
        existing = await self._db.read(lambda s: store.find_vm_by_uuid(s, record.uuid))
        if existing is not None:
            # Known under another host: it moved there (migrated outside Corral) or is on
            # both (a migration in flight, a stale definition left on the source). Never give
            # a VM two hosts: it follows only a domain that lives here and not there.
            await self.follow(record.uuid, {host.name})
            return
        if not is_name(record.name):
            log.warning(
                "not adopting domain %r on %s: name not valid in Corral", record.name, host.name
            )
            return
        try:
            await self._write(
                host.name,
                token,
                lambda s: store.add_vm(
                    s,
                    uuid=record.uuid,
                    name=record.name,
                    host=host.name,
                    created_by="libvirt",
                    description=record.description,
                    adopted=not record.corral_managed,
                    accelerator=record.accelerator,
                ),
            )
        except Conflict as exc:
            log.warning("not adopting domain %r on %s: %s", record.name, host.name, exc.message)
            return
        log.info("adopted domain %s (%s) on host %s", record.name, record.uuid, host.name)
        self._bus.publish(Event("vm", "adopted", {"host": host.name, "name": record.name}))
