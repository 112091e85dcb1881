"""``StorageDomains``: create, list, show, check and delete storage domains, and keep each
host's reach of them (checked at creation, by ``corral storage-domain check`` and whenever a
host connects)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from corral import store
from corral.errors import Conflict, CorralError
from corral.model.storage_domain import (
    LOCAL_DOMAIN,
    HostReach,
    ReachState,
    StorageDomainCreate,
    StorageDomainInfo,
    StorageDomainKind,
    image_kinds,
)
from corral.services._db import Db
from corral.services.hosts import HostService
from corral.services.storage.driver import DomainConfig, DriverContext, ReachResult, StorageDriver
from corral.services.storage.drivers import shared_dir
from corral.services.storage.registry import driver_for
from corral.store.storage_domains import StoredDomain, StoredReach
from corral.virt import LibvirtHost

log = logging.getLogger(__name__)

LOCAL_CONFIG = DomainConfig(LOCAL_DOMAIN, StorageDomainKind.LOCAL)
NOT_CONNECTED = "the host is not connected: checked when it connects"


def _stored_reach(result: ReachResult, at: datetime) -> StoredReach:
    return StoredReach(
        host=result.host,
        state=ReachState.REACHABLE if result.reachable else ReachState.UNREACHABLE,
        reason=result.reason,
        checked_at=at,
        capacity_bytes=result.capacity_bytes,
        free_bytes=result.free_bytes,
    )


def _host_reach(reach: StoredReach) -> HostReach:
    return HostReach(
        host=reach.host,
        state=reach.state,
        reason=reach.reason,
        checked_at=reach.checked_at,
        capacity_bytes=reach.capacity_bytes,
        free_bytes=reach.free_bytes,
    )


class StorageDomains:
    """The domains and their drivers. One check or change per domain at a time."""

    def __init__(self, db: Db, hosts: HostService, context: DriverContext) -> None:
        self._db = db
        self._hosts = hosts
        self._context = context
        self._locks: dict[str, asyncio.Lock] = {}

    # -- reading -----------------------------------------------------------------------------
    def driver(self, config: DomainConfig) -> StorageDriver:
        return driver_for(config, self._context)

    async def config(self, name: str) -> DomainConfig:
        """The domain ``name`` (NotFound naming close names)."""
        if name == LOCAL_DOMAIN:
            return LOCAL_CONFIG
        stored = await self._db(lambda s: store.get_domain(s, name))
        return DomainConfig(stored.name, stored.kind, stored.settings, stored.marker)

    async def list_domains(self) -> list[StorageDomainInfo]:
        stored = await self._db.read(store.list_domains)
        return [await self._local_info(), *(self._info(d) for d in stored)]

    async def show(self, name: str) -> StorageDomainInfo:
        if name == LOCAL_DOMAIN:
            return await self._local_info()
        return self._info(await self._db(lambda s: store.get_domain(s, name)))

    async def reach(self, name: str) -> dict[str, ReachState]:
        """Each host's reach of domain ``name`` (local: connected hosts reach their own)."""
        info = await self.show(name)
        return {r.host: r.state for r in info.hosts}

    async def holders(self, paths: Sequence[str]) -> dict[str, str]:
        """path -> the domain (other than local) whose volume it is, for those of ``paths``
        that are in one."""
        found: dict[str, str] = {}
        for domain in await self._db.read(store.list_domains):
            driver = self.driver(self._config_of(domain))
            found.update({p: domain.name for p in paths if p not in found and driver.holds(p)})
        return found

    async def host_reach(self, host: str) -> tuple[frozenset[str], dict[str, str]]:
        """The domains (other than local) ``host`` reaches, and why it does not reach others."""
        reached, reasons = set(), {}
        for domain in await self._db.read(store.list_domains):
            reach = domain.reach.get(host)
            if reach is not None and reach.state is ReachState.REACHABLE:
                reached.add(domain.name)
            else:
                reasons[domain.name] = reach.reason if reach and reach.reason else "not checked"
        return frozenset(reached), reasons

    def _info(self, domain: StoredDomain) -> StorageDomainInfo:
        hosts = [_host_reach(domain.reach[h]) for h in sorted(domain.reach)]
        known = {h.host for h in hosts}
        hosts += [
            HostReach(host=h.name, state=ReachState.UNCHECKED, reason=NOT_CONNECTED)
            for h in self._hosts.all()
            if h.name not in known
        ]
        first = next((h for h in hosts if h.state is ReachState.REACHABLE), None)
        operations = self.driver(self._config_of(domain)).operations()
        return StorageDomainInfo(
            name=domain.name,
            kind=domain.kind,
            settings=domain.settings,
            hosts=hosts,
            capacity_bytes=first.capacity_bytes if first else None,
            free_bytes=first.free_bytes if first else None,
            operations=operations,
            image_kinds=image_kinds(domain.kind, operations),
            created_at=domain.created_at,
            created_by=domain.created_by,
        )

    @staticmethod
    def _config_of(domain: StoredDomain) -> DomainConfig:
        return DomainConfig(domain.name, domain.kind, domain.settings, domain.marker)

    async def _local_info(self) -> StorageDomainInfo:
        driver = self.driver(LOCAL_CONFIG)
        connected = [h for h in self._hosts.all() if h.connected]
        at = datetime.now(UTC)
        reach = {r.host: _stored_reach(r, at) for r in await driver.check(connected, full=True)}
        hosts = [
            _host_reach(reach[h.name])
            if h.name in reach
            else HostReach(host=h.name, state=ReachState.UNCHECKED, reason=NOT_CONNECTED)
            for h in self._hosts.all()
        ]
        return StorageDomainInfo(
            name=LOCAL_DOMAIN,
            kind=StorageDomainKind.LOCAL,
            builtin=True,
            hosts=hosts,
            operations=driver.operations(),
            image_kinds=image_kinds(StorageDomainKind.LOCAL, driver.operations()),
        )

    # -- changes -----------------------------------------------------------------------------
    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def _connected(self) -> list[LibvirtHost]:
        return [h for h in self._hosts.all() if h.connected]

    async def create(self, who: str, request: StorageDomainCreate) -> StorageDomainInfo:
        """Realise the domain on every connected host and record who reaches it; refused
        (nothing recorded, nothing left on any host) when no host does."""
        name = request.name
        if name == LOCAL_DOMAIN:
            raise Conflict("'local' is the built-in domain (each host's own pool): choose another")
        settings = {k: str(v) for k, v in request.model_dump(exclude={"kind", "name"}).items()}
        config = DomainConfig(name, StorageDomainKind(request.kind), settings,
                              secrets.token_hex(16))  # fmt: skip
        driver = self.driver(config)
        async with self._lock(name):
            await self._db(lambda s: store.check_domain_name_free(s, name))
            hosts = self._connected()
            if not hosts:
                raise Conflict(f"no host is connected: storage domain {name} cannot be checked")
            results = await driver.check(hosts, full=True)
            if not any(r.reachable for r in results):
                await self._forget(driver, hosts)
                why = "; ".join(f"host {r.host}: {r.reason}" for r in results)
                raise Conflict(f"no host reaches storage domain {name} — {why}")
            stored = self._to_store(config, who, results)
            try:
                await self._db(lambda s: store.add_domain(s, stored))
            except CorralError:
                await self._forget(driver, hosts)
                raise
        return self._info(stored)

    @staticmethod
    def _to_store(config: DomainConfig, who: str, results: Sequence[ReachResult]) -> StoredDomain:
        at = datetime.now(UTC)
        return StoredDomain(
            name=config.name,
            kind=config.kind,
            settings=dict(config.settings),
            marker=config.marker,
            created_at=at,
            created_by=who,
            reach={r.host: _stored_reach(r, at) for r in results},
        )

    async def _forget(self, driver: StorageDriver, hosts: Sequence[LibvirtHost]) -> None:
        for host in hosts:
            try:
                await driver.forget(host)
            except CorralError as exc:
                log.error("storage domain %s: could not undo it on host %s: %s",
                          driver.config.name, host.name, exc.message)  # fmt: skip

    async def check(self, name: str) -> StorageDomainInfo:
        """Check every connected host's reach of ``name`` again and record it."""
        config = await self.config(name)
        if config.kind is StorageDomainKind.LOCAL:
            return await self._local_info()
        await self._check_on(config, self._connected(), full=True)
        return await self.show(name)

    async def _check_on(
        self, config: DomainConfig, hosts: Sequence[LibvirtHost], *, full: bool
    ) -> None:
        driver = self.driver(config)
        async with self._lock(config.name):
            results = await driver.check(hosts, full=full)
            at = datetime.now(UTC)
            reach = [_stored_reach(r, at) for r in results]

            def record(session: Session) -> None:
                for one in reach:
                    store.set_reach(session, config.name, one)

            await self._db(record)

    async def check_host(self, host: LibvirtHost) -> None:
        """Check ``host``'s reach of every domain (it connected, or was enrolled), and forget
        there the pools of domains deleted while it was down."""
        domains = await self._db.read(store.list_domains)
        try:
            shared = {d.name for d in domains if d.kind is StorageDomainKind.SHARED_DIR}
            for pool in await shared_dir.forget_strays(host, shared):
                log.info("host %s: undefined pool %s of a deleted storage domain", host.name, pool)
        except CorralError as exc:
            log.warning("host %s: looking for stale storage pools failed: %s", host.name,
                        exc.message)  # fmt: skip
        for domain in domains:
            try:
                await self._check_on(self._config_of(domain), [host], full=False)
            except CorralError as exc:
                log.warning("checking storage domain %s on host %s failed: %s",
                            domain.name, host.name, exc.message)  # fmt: skip

    async def check_all(self) -> None:
        """Check every domain on every connected host (at start-up)."""
        for domain in await self._db.read(store.list_domains):
            try:
                await self._check_on(self._config_of(domain), self._connected(), full=True)
            except CorralError as exc:
                log.warning("checking storage domain %s failed: %s", domain.name, exc.message)

    async def users(self, config: DomainConfig) -> list[str]:
        """The VMs (domains defined on any connected host) with a disk on domain ``config``."""
        driver = self.driver(config)
        found: set[str] = set()
        for host in self._connected():
            for path, vms in (await host.disk_users()).items():
                if driver.holds(path):
                    found.update(vms)
        return sorted(found)

    async def delete(self, name: str) -> None:
        """Forget the domain on every host and in the store; the data stays where it is.
        Refused while a VM has a disk on it."""
        if name == LOCAL_DOMAIN:
            raise Conflict("the built-in 'local' domain (each host's own pool) cannot be deleted")
        config = await self.config(name)
        async with self._lock(name):
            vms = await self.users(config)
            if vms:
                raise Conflict(
                    f"storage domain {name} is used by VM(s) {', '.join(vms)}: move their disks "
                    "or delete the VM(s) first"
                )
            await self._forget(self.driver(config), self._connected())
            await self._db(lambda s: store.delete_domain(s, name))
