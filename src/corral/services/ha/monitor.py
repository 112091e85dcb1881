"""The HA monitor: runs once in the cluster (lease ``ha``; on SQLite, the one instance) and
drives each host with HA VMs through its states, from the states stored in the database (a
Corral restart in the middle of a recovery resumes it):

    ok --silent for suspect_after_s--> suspect --> fencing --proof--> fenced
    fenced --> recovering (its HA VMs restarted by priority elsewhere) --> fenced
    fenced / recovering --the host answers again--> ok (stale definitions there forgotten)
    suspect / fencing --the host answers again before any proof--> ok (nothing restarted)

A host with no HA VM is never fenced: nothing would be restarted. A VM that fits nowhere
keeps its reason (``corral vm ha NAME``) and is retried on every pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from functools import partial

from corral import store
from corral.errors import Conflict, CorralError, NotFound
from corral.model.ha import HaStatus, HostHa, HostHaState, VmHaInfo
from corral.model.vm import EXECUTING
from corral.services._background import BackgroundTask
from corral.services._db import Db
from corral.services.audit import AuditService
from corral.services.events import Event, EventBus
from corral.services.ha.definitions import HaDefinitions
from corral.services.ha.fencing import Fencing
from corral.services.ha.heartbeats import Heartbeats, Lease
from corral.services.ha.restart import HaRestart
from corral.services.hosts import HostService
from corral.services.leases import Leases
from corral.services.principal import Principal
from corral.store import ha as ha_store
from corral.store.tables import Host

log = logging.getLogger(__name__)

HA_LEASE = "ha"
_FENCING = {HostHaState.SUSPECT, HostHaState.FENCING}
#: The monitor's own name in the audit log.
ACTOR = "corral-ha"


class HaMonitor:
    def __init__(
        self,
        db: Db,
        hosts: HostService,
        definitions: HaDefinitions,
        fencing: Fencing,
        restart: HaRestart,
        audit: AuditService,
        bus: EventBus,
        *,
        interval_s: float = 1.0,
        suspect_after_s: float = 5.0,
        fence_retry_s: float = 10.0,
        refresh_every_s: float = 30.0,
    ) -> None:
        self._db = db
        self._hosts = hosts
        self.definitions = definitions
        self._fencing = fencing
        self._restart = restart
        self._audit = audit
        self._bus = bus
        self.interval_s = interval_s
        self.suspect_after_s = suspect_after_s
        self.fence_retry_s = fence_retry_s
        self.refresh_every_s = refresh_every_s
        self.leases: Leases | None = None
        #: Since when each host has been silent (monotonic), as this instance saw it.
        self._silent: dict[str, float] = {}
        #: When this instance last saw each host connected (monotonic), on every instance: the
        #: storage lease counts only for a beat that moved until about then.
        self._heard: dict[str, float] = {}
        #: Each host's connection as the last look saw it.
        self._connected: dict[str, bool] = {}
        self._next_fence: dict[str, float] = {}
        self._fencers: dict[str, asyncio.Task[None]] = {}
        #: Why the BMC gave no proof at its last attempt (retried every fence_retry_s).
        self._unproven: dict[str, str] = {}
        #: Storage heartbeats (None: none, as on hosts without SSH access in tests).
        self.heartbeats: Heartbeats | None = None
        self.beat_check_s = 30.0
        self._next_beat_check = 0.0
        #: VMs that fit nowhere are retried this often, not on every pass.
        self._next_recover: dict[str, float] = {}
        self.recover_retry_s = 5.0
        #: When this instance's monitor began (monotonic); a host it has not seen answer yet
        #: is not suspected before ``startup_grace_s`` has passed.
        self._started = time.monotonic()
        self.startup_grace_s = max(15.0, suspect_after_s)
        self._running_here = False
        self._task = BackgroundTask("ha monitor", self._loop)
        self._side = [
            BackgroundTask("ha heartbeats", self._beats_loop),
            BackgroundTask("ha definitions", self._refresh_loop),
        ]
        self._hosts_with_ha: set[str] = set()
        self._ensuring: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.leases is not None:
            self.leases.want(HA_LEASE)
        self._started = time.monotonic()
        self._task.start()
        for side in self._side:
            side.start()

    async def stop(self) -> None:
        await self._task.stop()
        for side in self._side:
            await side.stop()
        if self._ensuring is not None:
            self._ensuring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ensuring
        for task in self._fencers.values():
            task.cancel()
        for task in self._fencers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fencers.clear()

    async def _loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                self._listen(started)
                holds = self.leases is None or await self.leases.holds(HA_LEASE) is not None
                self._running_here = holds
                if holds:
                    await self.pass_once()
                else:
                    self._silent.clear()
            except CorralError as exc:
                log.warning("HA monitor: %s", exc.message)
            except Exception:  # top of a background loop: log, never die
                log.exception("HA monitor pass failed")
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def pass_once(self) -> None:
        """One look at every host. No libvirt call on the way but fencing's and restarts':
        a call to a host that went silent mid-call blocks until libvirt gives up on it."""
        now = time.monotonic()
        rows = await self._db.read(store.list_hosts)
        counts = Counter(vm.host.name for vm in await self._db.read(lambda s: ha_store.ha_vms(s)))
        self._hosts_with_ha = set(counts)
        for row in rows:
            try:
                await self._step(row, counts[row.name], now)
            except CorralError as exc:
                log.warning("HA monitor, host %s: %s", row.name, exc.message)

    def _listen(self, now: float) -> None:
        """Note who answers. A host that answers again after Corral saw it silent (or that
        this instance sees for the first time) has its heartbeat's lease disarmed until its
        beat moves again, and its beater checked at once (a power cut killed it). Only a
        change of the connection counts, never how long since the last look: under load a
        late pass disarmed leases of hosts that never went away, and one cut just then had
        no lease to prove it off (seen in a full test run)."""
        for host in self._hosts.all():
            connected = host.connected
            before = self._connected.get(host.name)
            self._connected[host.name] = connected
            if not connected:
                continue
            if before is not True:
                if self.heartbeats is not None:
                    self.heartbeats.came_back(host.name)
                self._next_beat_check = 0.0
            self._heard[host.name] = now

    def _live(self, name: str) -> bool:
        try:
            return self._hosts.get(name).connected
        except NotFound:
            return False

    async def _step(self, row: Host, ha_vms: int, now: float) -> None:
        name, state, live = row.name, HostHaState(row.ha_state), self._live(row.name)
        if live:
            self._silent.pop(name, None)
        if state is HostHaState.OK:
            if live or row.standby or ha_vms == 0:
                return
            silent = now - self._silent.setdefault(name, now)
            if silent < self.suspect_after_s or now - self._started < self.startup_grace_s:
                # Just started: hosts are still being connected, silence means nothing yet.
                return
            await self._set(
                name, HostHaState.SUSPECT, f"libvirt has not answered for {silent:.0f} s"
            )
            state = HostHaState.SUSPECT
        if state in (HostHaState.SUSPECT, HostHaState.FENCING):
            if live:
                await self._set(name, HostHaState.OK, "answered again before it was fenced")
                return
            if await self._lease_proves(name):
                return
            running = self._fencers.get(name)
            if running is None or running.done():
                # Its own task: a BMC that does not answer must not hold up the other hosts.
                self._fencers[name] = asyncio.create_task(self._fence_logged(name, now))
            return
        # fenced or recovering
        if live:
            await self._returned(name)
            return
        if now >= self._next_recover.get(name, 0.0):
            await self._recover(name)

    async def _beats_loop(self) -> None:
        """Heartbeats started on every connected host while HA VMs exist (any host may
        receive a restarted VM; checked every ``beat_check_s``), and read every second."""
        while True:
            try:
                if self._running_here and self.heartbeats is not None and self._hosts_with_ha:
                    now = time.monotonic()
                    starting = self._ensuring is not None and not self._ensuring.done()
                    if now >= self._next_beat_check and not starting:
                        self._next_beat_check = now + self.beat_check_s
                        live = {h.name for h in self._hosts.all() if h.connected}
                        # A task of its own: starting beaters over SSH takes seconds per host
                        # under load, and beats must be read every second meanwhile (a beat
                        # not seen moving before its host dies proves nothing).
                        self._ensuring = asyncio.create_task(self._ensure(live))
                if self.heartbeats is not None:
                    # Read on every instance: one that takes over the monitor knows whose beat
                    # ran until its host went silent.
                    await self.heartbeats.observe()
            except CorralError as exc:
                log.warning("HA heartbeats: %s", exc.message)
            except Exception:  # top of a background loop: log, never die
                log.exception("HA heartbeats failed")
            await asyncio.sleep(self.interval_s)

    async def _ensure(self, hosts: set[str]) -> None:
        try:
            if self.heartbeats is not None:
                await self.heartbeats.ensure(hosts)
        except CorralError as exc:
            log.warning("HA heartbeats: %s", exc.message)
        except Exception:  # a task of its own: log, never lose it silently
            log.exception("HA heartbeats could not be started")

    async def _refresh_loop(self) -> None:
        """The HA VMs' saved definitions, compared every ``refresh_every_s``."""
        while True:
            try:
                if self._running_here:
                    await self.definitions.refresh()
            except CorralError as exc:
                log.warning("HA definitions: %s", exc.message)
            except Exception:  # top of a background loop: log, never die
                log.exception("HA definitions refresh failed")
            await asyncio.sleep(self.refresh_every_s)

    async def _lease_proves(self, name: str) -> bool:
        """Fenced by its storage heartbeat's lease, checked on every pass (a BMC attempt,
        which may take 30 s to time out, runs beside it in the fencing task)."""
        lease = self._lease(name)
        if lease is None or not lease.expired:
            return False
        unproven = self._unproven.get(name, "")
        reason = f"{lease.reason} ({unproven})" if unproven else lease.reason
        if await self._set(name, HostHaState.FENCED, reason, only_from=_FENCING):
            self._next_fence.pop(name, None)
            await self._audit.record(ACTOR, "host.fence", name, "ok", reason)
        return True

    def _lease(self, name: str) -> Lease | None:
        if self.heartbeats is None:
            return None
        return self.heartbeats.lease(name, self._heard.get(name))

    async def _fence_logged(self, name: str, now: float) -> None:
        try:
            await self._fence(name, now)
        except CorralError as exc:
            log.warning("HA: fencing host %s: %s", name, exc.message)
        except Exception:  # a task of its own: log, never lose it silently
            log.exception("HA: fencing host %s failed", name)

    async def _fence(self, name: str, now: float) -> None:
        """Fence ``name``; the next pass recovers it (never two recoveries at once). States
        are written only while the host is still being fenced: an administrator's
        confirm-down, or its return, meanwhile is not overwritten."""
        if now < self._next_fence.get(name, 0.0):
            return
        started = "switching it off through its power driver"
        if not await self._set(name, HostHaState.FENCING, started, only_from=_FENCING):
            return
        fence = await self._fencing.fence(name)
        if fence.proven:
            self._next_fence.pop(name, None)
            if await self._set(name, HostHaState.FENCED, fence.reason, only_from=_FENCING):
                await self._audit.record(ACTOR, "host.fence", name, "ok", fence.reason)
            return
        self._next_fence[name] = time.monotonic() + self.fence_retry_s
        self._unproven[name] = fence.reason
        lease = self._lease(name)
        unproven = self._unproven.get(name, "")
        reason = unproven + (f"; {lease.reason}" if lease is not None else "")
        await self._set(name, HostHaState.FENCING, reason, only_from=_FENCING)

    async def _recover(self, name: str) -> None:
        vms = await self._db.read(lambda s: ha_store.ha_vms(s, host=name))
        if not vms:
            return
        await self._set(name, HostHaState.RECOVERING, f"restarting {len(vms)} HA VM(s) elsewhere")
        placed: dict[str, int] = {}
        left = 0
        for vm in vms:
            try:
                to = await self._restart.restart(vm, name, placed)
            except CorralError as exc:
                left += 1
                if vm.ha_waiting != exc.message:
                    reason = exc.message
                    await self._db(partial(ha_store.set_vm_waiting, uuid=vm.uuid, reason=reason))
                    await self._audit.record(ACTOR, "vm.ha_restart", vm.name, f"error: {reason}")
                continue
            await self._audit.record(ACTOR, "vm.ha_restart", vm.name, "ok", f"on {to}")
        if left:
            self._next_recover[name] = time.monotonic() + self.recover_retry_s
        reason = (
            f"{left} HA VM(s) wait for a host that can take them"
            if left
            else f"its HA VMs run elsewhere ({len(vms)} restarted)"
        )
        await self._set(name, HostHaState.FENCED, reason)

    async def _returned(self, name: str) -> None:
        """A fenced host answers again: forget the definitions of VMs now living elsewhere
        (never start them), then it is ok."""
        host = self._hosts.get(name)
        here = {vm.uuid for vm in await self._db.read(lambda s: store.list_vms(s, host=name))}
        forgotten = []
        for record in await host.list_domains():
            if record.uuid in here:
                continue
            row = await self._db.read(partial(store.find_vm_by_uuid, uuid=record.uuid))
            if row is None:
                continue  # not Corral's: the reconciler adopts it
            if record.state in EXECUTING:
                # Never expected (the host was proven off): say it loudly, touch nothing.
                log.error(
                    "HA: VM %s runs on returned host %s and on %s", row.name, name, row.host.name
                )
                continue
            await host.forget_stale(record.uuid)
            forgotten.append(row.name)
        reason = f"answered again; forgot {len(forgotten)} stale definition(s)" if forgotten else ""
        await self._set(name, HostHaState.OK, reason)
        await self._audit.record(ACTOR, "host.ha_return", name, "ok", reason)

    async def _set(
        self,
        name: str,
        state: HostHaState,
        reason: str,
        only_from: set[HostHaState] | None = None,
    ) -> bool:
        """Write the host's HA state (``only_from``: only while it is one of these); whether
        it is ``state`` now."""
        before = await self._db.read(lambda s: store.get_host(s, name))
        if only_from is not None and HostHaState(before.ha_state) not in only_from:
            return before.ha_state == state.value
        if before.ha_state == state.value and before.ha_reason == reason:
            return True
        await self._db(lambda s: ha_store.set_host_ha(s, name, state.value, reason))
        if before.ha_state != state.value:
            log.warning("HA: host %s is %s: %s", name, state.value, reason)
        self._bus.publish(
            Event("host", "ha", {"name": name, "state": state.value, "reason": reason})
        )
        return True

    async def confirm_down(self, principal: Principal, name: str) -> HostHa:
        """An administrator's word that host ``name`` is off: refused while it answers."""
        self._hosts.get(name)
        if self._live(name):
            raise Conflict(
                f"host {name} answers libvirt: it is not down, and confirming it down would "
                "let its VMs run twice; nothing was changed"
            )
        reason = f"confirmed down by {principal.user}"
        await self._set(name, HostHaState.FENCED, reason)
        self._next_fence.pop(name, None)
        log.warning("HA: host %s confirmed down by %s", name, principal.user)
        return await self.host_status(name)

    async def host_status(self, name: str) -> HostHa:
        row = await self._db.read(lambda s: store.get_host(s, name))
        count = len(await self._db.read(lambda s: ha_store.ha_vms(s, host=name)))
        return HostHa(
            host=row.name,
            state=HostHaState(row.ha_state),
            reason=row.ha_reason,
            since=row.ha_since,
            ha_vms=count,
            heartbeat=self.heartbeats.describe(name) if self.heartbeats else None,
        )

    async def status(self) -> HaStatus:
        rows = await self._db.read(store.list_hosts)
        vms = await self._db.read(lambda s: ha_store.ha_vms(s))
        counts = Counter(vm.host.name for vm in vms)
        holder = "this instance" if self._running_here else "another instance"
        if self.leases is None:
            holder = "this instance"
        return HaStatus(
            monitor=holder,
            hosts=[
                HostHa(
                    host=r.name,
                    state=HostHaState(r.ha_state),
                    reason=r.ha_reason,
                    since=r.ha_since,
                    ha_vms=counts[r.name],
                    heartbeat=self.heartbeats.describe(r.name) if self.heartbeats else None,
                )
                for r in rows
            ],
            waiting=[
                VmHaInfo(vm=vm.name, enabled=True, priority=vm.ha_priority, waiting=vm.ha_waiting)
                for vm in vms
                if vm.ha_waiting
            ],
        )
