"""Turning HA on and off for a VM, and keeping the definition it restarts from.

A VM can only come back elsewhere if every other host reaches its disks: HA is refused for a
VM with a disk outside a shared storage domain, saying which disk and what to do. Its
definition is read from its host when HA is switched on and again whenever it changes (the
monitor compares digests): when the host dies, libvirt there cannot be asked any more.
"""

from __future__ import annotations

import hashlib
import logging
from functools import partial

from sqlalchemy.orm import Session

from corral.errors import Conflict, CorralError
from corral.model.ha import VmHaInfo, VmHaRequest
from corral.services._db import Db
from corral.services.audit import AuditService
from corral.services.hosts import HostService
from corral.services.principal import Principal
from corral.services.storage.domains import StorageDomains
from corral.services.vms.inventory import VmInventory
from corral.store import ha as ha_store
from corral.virt import DomainRecord

log = logging.getLogger(__name__)


def digest(xml: str) -> str:
    return hashlib.sha256(xml.encode()).hexdigest()


class HaDefinitions:
    def __init__(
        self,
        db: Db,
        inventory: VmInventory,
        hosts: HostService,
        storage: StorageDomains,
        audit: AuditService,
    ) -> None:
        self._db = db
        self._inventory = inventory
        self._hosts = hosts
        self._storage = storage
        self._audit = audit

    async def show(self, name: str) -> VmHaInfo:
        row = await self._inventory.row(name)
        saved = await self._db.read(lambda s: ha_store.definition(s, row.uuid))
        return VmHaInfo(
            vm=row.name,
            enabled=row.ha_priority is not None,
            priority=row.ha_priority,
            definition_saved_at=saved.updated_at if saved is not None else None,
            waiting=row.ha_waiting,
        )

    async def configure(self, principal: Principal, name: str, request: VmHaRequest) -> VmHaInfo:
        if not request.enabled:
            await self._db(lambda s: ha_store.set_vm_ha(s, name, None))
            return await self.show(name)
        row, host, record = await self._inventory.record(name)
        await self._check_disks(row.name, host.name, record)
        xml = await host.saved_definition(record.uuid)
        uuid, priority = record.uuid, request.priority

        def enable(session: Session) -> None:
            ha_store.set_vm_ha(session, row.name, priority)
            ha_store.save_definition(session, uuid, xml, digest(xml))

        await self._db(enable)
        log.info("HA on for VM %s (priority %d), by %s", row.name, priority, principal.user)
        return await self.show(name)

    async def _check_disks(self, name: str, host: str, record: DomainRecord) -> None:
        """Conflict unless every disk is on a shared storage domain (CD-ROMs are media: a
        restart elsewhere keeps them only where that host has the same file)."""
        disks = [d for d in record.disks if d.device == "disk"]
        if not disks:
            return
        held = await self._storage.holders([d.path for d in disks if d.path])
        local = [d for d in disks if not d.path or d.path not in held]
        if local:
            named = ", ".join(f"{d.target} ({d.path or 'no file'})" for d in local)
            raise Conflict(
                f"VM {name} cannot be highly available: disk(s) {named} are on host {host}'s "
                "local storage, which no other host reaches, so nothing could restart it "
                f"elsewhere; move them to a shared storage domain first (`corral vm move-disk "
                f"{name} {local[0].target} --to DOMAIN`)"
            )

    async def refresh(self) -> int:
        """Save the definition of every HA VM whose host answers and whose definition changed
        since it was saved; how many were saved."""
        rows = await self._db.read(lambda s: ha_store.ha_vms(s))
        digests = await self._db.read(ha_store.definition_digests)
        saved = 0
        for row in rows:
            try:
                host = self._hosts.get(row.host.name)
                if not host.connected:
                    continue
                xml = await host.saved_definition(row.uuid)
            except CorralError:
                continue  # moved, missing or its host went away: the next pass sees
            if digests.get(row.uuid) == digest(xml):
                continue
            await self._db(
                partial(ha_store.save_definition, uuid=row.uuid, xml=xml, digest=digest(xml))
            )
            saved += 1
        return saved
