"""The hosts Corral manages and their live libvirt connections."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from corral import store
from corral.errors import Conflict, CorralError, HostUnreachable, NotFound
from corral.metrics import HOSTS_CONNECTED
from corral.model.host import HostCreate, HostInfo
from corral.model.vm import Accelerator
from corral.services._db import Db
from corral.virt import DomainEvent, LibvirtHost

log = logging.getLogger(__name__)

EventHandler = Callable[[DomainEvent], None]

_RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)


class HostService:
    """Owns one :class:`LibvirtHost` per host row; a host that cannot be reached at start-up is
    retried in the background (LibvirtHost itself handles reconnects after the first success)."""

    def __init__(self, db: Db, pool_dir: str, on_event: EventHandler) -> None:
        self._db = db
        self._pool_dir = pool_dir
        self._on_event = on_event
        self._hosts: dict[str, LibvirtHost] = {}
        self._errors: dict[str, str] = {}
        self._retries: dict[str, asyncio.Task[None]] = {}
        # Hosts whose daemon another host row already is: kept disconnected, never reconciled.
        self._duplicates: set[str] = set()

    async def start(self, local_name: str, local_uri: str, local_accel: Accelerator | None) -> None:
        rows = await self._db(store.list_hosts)
        if not rows:
            await self._db(lambda s: store.add_host(s, local_name, local_uri, local_accel))
            rows = await self._db(store.list_hosts)
        for row in rows:
            accel = Accelerator(row.accelerator) if row.accelerator else None
            await self._attach(row.name, row.uri, accel)

    async def _attach(self, name: str, uri: str, accel: Accelerator | None) -> LibvirtHost:
        host = LibvirtHost(name, uri, forced_accelerator=accel, pool_dir=self._pool_dir)
        host.subscribe(self._on_event)
        self._hosts[name] = host
        try:
            await host.connect()
            await host.ensure_pool()
        except CorralError as exc:
            self._errors[name] = exc.message
            log.warning("host %s (%s) is not reachable yet: %s", name, uri, exc.message)
            self._retries[name] = asyncio.create_task(self._retry(host))
        else:
            await self._claim(host)
        self._update_gauge()
        return host

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
            self._duplicates.add(host.name)
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
                await host.ensure_pool()
            except CorralError as exc:
                self._errors[host.name] = exc.message
                continue
            self._errors.pop(host.name, None)
            if not await self._claim(host):
                break
            self._on_event(DomainEvent(host.name, None, None, "connected", "connected"))
        self._retries.pop(host.name, None)
        self._update_gauge()

    def _update_gauge(self) -> None:
        HOSTS_CONNECTED.set(sum(1 for h in self._hosts.values() if h.connected))

    async def stop(self) -> None:
        for task in self._retries.values():
            task.cancel()
        for host in self._hosts.values():
            await host.close()
        self._hosts.clear()

    def get(self, name: str | None = None) -> LibvirtHost:
        """The named host, or the default one (the only host, or the first added)."""
        if name is None:
            if not self._hosts:
                raise NotFound("Corral manages no host yet: add one with `corral host add`")
            return next(iter(self._hosts.values()))
        try:
            return self._hosts[name]
        except KeyError:
            known = ", ".join(sorted(self._hosts)) or "none"
            raise NotFound(f"unknown host {name!r}; known hosts: {known}") from None

    def connected(self, name: str) -> LibvirtHost:
        host = self.get(name)
        if not host.connected:
            reason = self._errors.get(name, "the connection is down")
            raise HostUnreachable(
                f"host {name!r} is not reachable ({reason}); Corral keeps retrying"
            )
        return host

    def all(self) -> list[LibvirtHost]:
        return list(self._hosts.values())

    async def info(self, name: str) -> HostInfo:
        host = self.get(name)
        row = await self._db(lambda s: store.get_host(s, name))
        caps = None
        if host.connected:
            try:
                caps = await host.capabilities()
            except CorralError as exc:
                self._errors[name] = exc.message
        return store.host_info(
            row, connected=host.connected, capabilities=caps, last_error=self._errors.get(name)
        )

    async def list_hosts(self) -> list[HostInfo]:
        return [await self.info(name) for name in self._hosts]

    async def add(self, request: HostCreate) -> HostInfo:
        if request.name in self._hosts:
            raise Conflict(f"a host named {request.name!r} already exists")
        probe = LibvirtHost(request.name, request.uri, forced_accelerator=request.accelerator)
        try:
            # Refuse a host that cannot be reached now: a typo in a URI should fail loudly.
            await probe.connect()
            libvirt_id = probe.libvirt_id
        finally:
            await probe.close()
        twin = next((h for h in self._hosts.values() if h.libvirt_id == libvirt_id), None)
        if twin is not None and libvirt_id is not None:
            raise Conflict(store.already_registered(twin.name, libvirt_id))
        # The unique libvirt_id column settles concurrent registrations of one daemon.
        await self._db(
            lambda s: store.add_host(
                s, request.name, request.uri, request.accelerator, libvirt_id=libvirt_id
            )
        )
        await self._attach(request.name, request.uri, request.accelerator)
        return await self.info(request.name)

    def is_duplicate(self, name: str) -> bool:
        return name in self._duplicates

    async def remove(self, name: str) -> None:
        host = self.get(name)
        vms = await self._db(lambda s: store.list_vms(s, host=name))
        if vms:
            names = ", ".join(v.name for v in vms[:5])
            raise Conflict(
                f"host {name!r} still has {len(vms)} VM(s) in the inventory ({names}): "
                "migrate or delete them first"
            )
        await self._db(lambda s: store.delete_host(s, name))
        retry = self._retries.pop(name, None)
        if retry:
            retry.cancel()
        await host.close()
        del self._hosts[name]
        self._duplicates.discard(name)
        self._update_gauge()
