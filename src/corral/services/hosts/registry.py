"""The hosts Corral manages: live libvirt connections, maintenance, certificates on record."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from corral import store
from corral.errors import Conflict, CorralError, HostUnreachable, NotFound
from corral.metrics import CERT_EXPIRY, HOSTS_CONNECTED
from corral.model.common import did_you_mean
from corral.model.host import HostCreate, HostInfo, SshAccess
from corral.model.vm import Accelerator
from corral.pki import ClusterPki
from corral.services._background import BackgroundTask
from corral.services._db import Db
from corral.services.hosts.uri_policy import HostUriPolicy
from corral.virt import DomainEvent, LibvirtHost

log = logging.getLogger(__name__)

EventHandler = Callable[[DomainEvent], None]

_RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)
#: How often an instance beside others re-reads the hosts table (see :meth:`HostService.sync`).
SYNC_S = 2.0


class HostService:
    """Owns one :class:`LibvirtHost` per host row; a host that cannot be reached at start-up is
    retried in the background (LibvirtHost itself handles reconnects after the first success)."""

    def __init__(
        self,
        db: Db,
        pool_dir: str,
        on_event: EventHandler,
        pki: ClusterPki | None,
        uri_policy: HostUriPolicy,
    ) -> None:
        self._db = db
        self._uri_policy = uri_policy
        self._pool_dir = pool_dir
        self._on_event = on_event
        self.pki = pki
        self._hosts: dict[str, LibvirtHost] = {}
        self._maintenance: set[str] = set()
        #: Hosts Corral powered down (``corral power``): no failure, no new VMs.
        self._standby: set[str] = set()
        #: Each host's power driver kind, for listings (``services.power`` keeps it current).
        self.power_drivers: dict[str, str] = {}
        self._errors: dict[str, str] = {}
        self._retries: dict[str, asyncio.Task[None]] = {}
        #: Run (as background jobs) with each host that connects — at once when added or at
        #: start-up, after a retry, after a reconnect: e.g. storage domain reach checks.
        self.on_connected: list[Callable[[LibvirtHost], Coroutine[Any, Any, None]]] = []
        self._jobs: set[asyncio.Task[None]] = set()
        #: Hosts this instance is recording or forgetting right now (``sync`` leaves them be).
        self._changing: set[str] = set()
        #: Bumped by each maintenance/standby change made here: a sync whose read began
        #: before it must not put back what that change replaced.
        self._flags_changed = 0
        self._syncing = BackgroundTask("host-sync", self._sync_forever)

    async def start(self, local_name: str, local_uri: str, local_accel: Accelerator | None) -> None:
        rows = await self._db(store.list_hosts)
        if not rows:
            await self._db(lambda s: store.add_host(s, local_name, local_uri, local_accel))
            rows = await self._db(store.list_hosts)
        for row in rows:
            accel = Accelerator(row.accelerator) if row.accelerator else None
            if row.name == local_name and local_accel is not None and accel != local_accel:
                accel = await self._force_accelerator(row.name, local_accel)
            if row.maintenance:
                self._maintenance.add(row.name)
            if row.standby:
                self._standby.add(row.name)
            await self._attach(row.name, row.uri, accel)

    async def _force_accelerator(self, name: str, accel: Accelerator) -> Accelerator:
        """The setting is the administrator's current word (tcg after finding that KVM guests
        hang here, say), not only the first start's."""
        log.info("host %s: accelerator %s, from the configuration", name, accel)
        await self._db(lambda s: store.set_accelerator(s, name, accel))
        return accel

    async def _attach(self, name: str, uri: str, accel: Accelerator | None) -> LibvirtHost:
        host = LibvirtHost(name, uri, forced_accelerator=accel, pool_dir=self._pool_dir)
        host.subscribe(self._event)
        self._hosts[name] = host
        try:
            await host.connect()
            await host.storage.ensure_pool()
        except CorralError as exc:
            self._errors[name] = exc.message
            log.warning("host %s (%s) is not reachable yet: %s", name, uri, exc.message)
            self._retries[name] = asyncio.create_task(self._retry(host))
        else:
            if await self._claim(host):
                self._connected_now(host)
        self._update_gauge()
        return host

    def _event(self, event: DomainEvent) -> None:
        if event.kind == "connected" and event.uuid is None:
            host = self._hosts.get(event.host)
            if host is not None:
                self._connected_now(host)
        self._on_event(event)

    def _connected_now(self, host: LibvirtHost) -> None:
        for hook in self.on_connected:
            job = asyncio.create_task(hook(host), name=f"on {host.name} connected")
            self._jobs.add(job)
            job.add_done_callback(self._jobs.discard)

    async def _claim(self, host: LibvirtHost) -> bool:
        """Record which daemon ``host`` is. A daemon another host row already is (registered
        twice before Corral checked) is disconnected: counting it twice would double its CPUs
        and memory, and its domains would be adopted for both."""
        libvirt_id = host.libvirt_id
        if libvirt_id is None:
            return True
        try:
            await self._db(lambda s: store.claim_libvirt_id(s, host.name, libvirt_id))
        except Conflict as exc:
            log.error("host %s: %s", host.name, exc.message)
            self._errors[host.name] = exc.message
            await host.close()
            return False
        return True

    async def _retry(self, host: LibvirtHost) -> None:
        attempt = 0
        while not host.connected:
            await asyncio.sleep(_RETRY_S[min(attempt, len(_RETRY_S) - 1)])
            attempt += 1
            try:
                await host.connect()
                await host.storage.ensure_pool()
            except CorralError as exc:
                self._errors[host.name] = exc.message
                continue
            self._errors.pop(host.name, None)
            if not await self._claim(host):
                break
            self._event(DomainEvent(host.name, None, None, "connected", "connected"))
        self._retries.pop(host.name, None)
        self._update_gauge()

    # -- other instances' changes -----------------------------------------------------------
    def follow_others(self) -> None:
        """Beside other instances (PostgreSQL): follow the hosts they add or remove and the
        maintenance and standby they set, every :data:`SYNC_S`. Without it a host enrolled
        through one instance was "unknown" to the others until they restarted."""
        self._syncing.start()

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(SYNC_S)
            try:
                await self.sync()
            except CorralError as exc:  # a database outage must not end the loop
                log.warning("hosts not re-read: %s", exc.message)

    async def sync(self) -> None:
        """Make this instance's hosts what the database says (see :meth:`follow_others`)."""
        flags_before = self._flags_changed
        rows = await self._db.read(store.list_hosts)
        recorded = {row.name for row in rows}
        for row in rows:
            if flags_before == self._flags_changed:
                self._flag(self._maintenance, row.name, row.maintenance)
                self._flag(self._standby, row.name, row.standby)
            if row.name not in self._hosts and row.name not in self._changing:
                log.info("host %s was added through another Corral instance", row.name)
                accel = Accelerator(row.accelerator) if row.accelerator else None
                await self._attach(row.name, row.uri, accel)
        for name in list(self._hosts):
            if name not in recorded and name not in self._changing:
                log.info("host %s was removed through another Corral instance", name)
                await self._detach(name)

    @staticmethod
    def _flag(names: set[str], name: str, on: bool) -> None:
        (names.add if on else names.discard)(name)

    def _update_gauge(self) -> None:
        HOSTS_CONNECTED.set(sum(1 for h in self._hosts.values() if h.connected))

    async def stop(self) -> None:
        await self._syncing.stop()
        for task in [*self._retries.values(), *self._jobs]:
            task.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        for host in self._hosts.values():
            await host.close()
        self._hosts.clear()

    def get(self, name: str | None = None) -> LibvirtHost:
        """The named host, or the default one (the only host, or the first added)."""
        if name is None:
            if not self._hosts:
                raise NotFound("Corral manages no host yet: add one with `corral host add`")
            return next(iter(self._hosts.values()))
        return self._named(name)

    def _named(self, name: str) -> LibvirtHost:
        try:
            return self._hosts[name]
        except KeyError:
            close = did_you_mean(name, self._hosts)
            known = close or "known hosts: " + (", ".join(sorted(self._hosts)) or "none")
            raise NotFound(f"unknown host {name!r}; {known}") from None

    def connected(self, name: str) -> LibvirtHost:
        host = self.get(name)
        if not host.connected:
            reason = self._errors.get(name, "the connection is down")
            raise HostUnreachable(
                f"host {name!r} is not reachable ({reason}); Corral keeps retrying"
            )
        return host

    def last_error(self, name: str) -> str | None:
        """Why the host is not connected, as last seen (None: no error on record)."""
        return self._errors.get(name)

    def all(self) -> list[LibvirtHost]:
        return list(self._hosts.values())

    async def info(self, name: str, *, guests: bool = False) -> HostInfo:
        """The host as Corral sees it; with ``guests``, what it can run per architecture."""
        host = self.get(name)
        row = await self._db(lambda s: store.get_host(s, name))
        caps = None
        if host.connected:
            try:
                caps = await host.capabilities()
                if guests:
                    caps = caps.model_copy(update={"guests": await host.guests.details()})
            except CorralError as exc:
                self._errors[name] = exc.message
        certs = self.pki.host_certs(name) if self.pki is not None else []
        return store.host_info(
            row,
            connected=host.connected,
            capabilities=caps,
            last_error=self._errors.get(name),
            certificates=certs,
            power_driver=self.power_drivers.get(name),
        )

    async def list_hosts(self) -> list[HostInfo]:
        return [await self.info(name) for name in self._hosts]

    def check_name_free(self, name: str) -> None:
        if name in self._hosts:
            raise Conflict(f"a host named {name!r} already exists; choose another name")

    async def identify(self, name: str, uri: str, *, itself: str | None = None) -> str | None:
        """Connect to ``uri`` once and say which daemon it is (its libvirt id); Conflict if a
        registered host already is that daemon. Refuses a host that cannot be reached now: a
        typo in a URI should fail loudly."""
        probe = LibvirtHost(name, uri)
        try:
            await probe.connect()
            libvirt_id = probe.libvirt_id
        finally:
            await probe.close()
        twin = next(
            (h for h in self._hosts.values() if h.libvirt_id == libvirt_id and h.name != itself),
            None,
        )
        if twin is not None and libvirt_id is not None:
            raise Conflict(store.already_registered(twin.name, libvirt_id))
        return libvirt_id

    async def add(self, request: HostCreate) -> HostInfo:
        """Add a host by URI: only URIs the policy allows (never one that runs a program,
        opens any socket or reads any file), connected to before it is recorded."""
        self._uri_policy.check(request.uri)
        self.check_name_free(request.name)
        libvirt_id = await self.identify(request.name, request.uri)
        # A host installed from a bundle: the certificates issued for it become its own.
        address = self.pki.adopt_pending(request.name) if self.pki is not None else None
        return await self.register(
            request.name, request.uri, request.accelerator, libvirt_id, address=address
        )

    async def register(
        self,
        name: str,
        uri: str,
        accelerator: Accelerator | None,
        libvirt_id: str | None,
        *,
        address: str | None = None,
        ssh: SshAccess | None = None,
    ) -> HostInfo:
        """Record a host already identified and connect to it."""
        self.check_name_free(name)
        self._changing.add(name)
        try:
            # The unique libvirt_id column settles concurrent registrations of one daemon.
            await self._db(
                lambda s: store.add_host(
                    s, name, uri, accelerator, libvirt_id=libvirt_id, address=address, ssh=ssh
                )
            )
            await self._attach(name, uri, accelerator)
        finally:
            self._changing.discard(name)
        return await self.info(name)

    # -- maintenance -------------------------------------------------------------------------
    def in_maintenance(self, name: str) -> bool:
        return name in self._maintenance

    async def set_maintenance(self, name: str, enabled: bool) -> HostInfo:
        self.get(name)
        self._flags_changed += 1
        await self._db(lambda s: store.set_maintenance(s, name, enabled))
        if enabled:
            self._maintenance.add(name)
        else:
            self._maintenance.discard(name)
        return await self.info(name)

    # -- standby ---------------------------------------------------------------------------------
    def in_standby(self, name: str) -> bool:
        return name in self._standby

    async def standby_recorded(self, name: str) -> bool:
        """Whether the database says the host is in standby (another instance may have
        recorded it); this instance's view follows."""
        standby = await self._db(lambda s: store.get_host(s, name).standby)
        self._flag(self._standby, name, bool(standby))
        return bool(standby)

    async def set_standby(self, name: str, standby: bool) -> None:
        """Record that Corral powered the host down (True) or woke it (False)."""
        self.get(name)
        self._flags_changed += 1
        await self._db(lambda s: store.set_standby(s, name, standby))
        if standby:
            self._standby.add(name)
        else:
            self._standby.discard(name)

    def for_new_vm(self, name: str | None) -> LibvirtHost:
        """The host a new VM goes to: the named one unless it is in maintenance or standby
        (Conflict), else the first connected host in neither."""
        if name is not None:
            self.get(name)
            if name in self._maintenance:
                raise Conflict(
                    f"host {name!r} is in maintenance and takes no new VMs: pick another host, "
                    f"or end it with `corral host maintenance {name} off`"
                )
            if name in self._standby:
                raise Conflict(
                    f"host {name!r} is in standby (powered down to save energy): pick another "
                    f"host, or wake it with `corral host power-on {name}`"
                )
            return self.connected(name)
        candidates = [
            h
            for h in self._hosts.values()
            if h.name not in self._maintenance and h.name not in self._standby
        ]
        if not candidates:
            if not self._hosts:
                raise NotFound("Corral manages no host yet: add one with `corral host add`")
            raise Conflict(
                "every host is in maintenance or standby: end maintenance on one of them or "
                "wake one (`corral host power-on NAME`) first"
            )
        host = next((h for h in candidates if h.connected), candidates[0])
        return self.connected(host.name)

    async def wait_connected(self, name: str, seconds: float) -> bool:
        host = self.get(name)
        for _ in range(int(seconds / 0.2)):
            if host.connected:
                break
            await asyncio.sleep(0.2)
        return host.connected

    def update_cert_metrics(self) -> None:
        """Seconds until every certificate Corral issued expires, by host and purpose
        (``_manager``: Corral's own certificates and the CAs)."""
        if self.pki is None:
            return
        CERT_EXPIRY.clear()
        for info in self.pki.manager_certs():
            label = info.subject if info.purpose.value == "ca" else info.purpose.value
            CERT_EXPIRY.labels("_manager", label).set(info.expires_in_s)
        for name in self._hosts:
            for info in self.pki.host_certs(name):
                CERT_EXPIRY.labels(name, info.purpose.value).set(info.expires_in_s)

    async def remove(self, name: str) -> None:
        self.get(name)
        vms = await self._db(lambda s: store.list_vms(s, host=name))
        if vms:
            names = ", ".join(v.name for v in vms[:5])
            raise Conflict(
                f"host {name!r} still has {len(vms)} VM(s) in the inventory ({names}): "
                "migrate or delete them first"
            )
        self._changing.add(name)
        try:
            await self._db(lambda s: store.delete_host(s, name))
            await self._detach(name)
        finally:
            self._changing.discard(name)
        if self.pki is not None:
            self.pki.forget_host(name)

    async def _detach(self, name: str) -> None:
        """Close and forget ``name`` (its row is gone)."""
        retry = self._retries.pop(name, None)
        if retry:
            retry.cancel()
        host = self._hosts.pop(name, None)
        if host is not None:
            await host.close()
        self._maintenance.discard(name)
        self._standby.discard(name)
        self.power_drivers.pop(name, None)
        self._errors.pop(name, None)
        self._update_gauge()
