"""Deleting a VM: its domain, its serial log and, on request, its disks (never a base that a
linked clone still stands on, nor a disk image of the library, nor an iSCSI LUN: LUNs are made
and removed on the target, so a VM only ever borrows one)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from corral import store
from corral.errors import Conflict
from corral.model.vm import DeleteRequest, VmState
from corral.services.images import is_image_volume
from corral.services.locks import OperationLocks
from corral.services.principal import Principal
from corral.services.storage import StorageDomains
from corral.services.vms._volumes import backs_another
from corral.services.vms.inventory import VmInventory
from corral.virt import DomainRecord, LibvirtHost, VolumeRef
from corral.virt.domain_xml.disk import network_source

LUN_KEPT = "it is an iSCSI LUN: LUNs are made and removed on the target, never by Corral"


class VmDeletion:
    def __init__(self, inventory: VmInventory, locks: OperationLocks) -> None:
        self._inventory = inventory
        self._locks = locks
        #: The storage domains, whose drivers delete volumes no libvirt pool holds (nfs).
        self.storage: StorageDomains | None = None

    async def delete(self, principal: Principal, name: str, req: DeleteRequest) -> list[str]:
        """Returns notes on disks kept: all of them without ``delete_disks`` (named, so
        nobody has to guess that they stay), else those something else still uses."""
        async with self._locks.hold(name, "delete"):
            return await self._delete(name, req)

    async def _delete(self, name: str, req: DeleteRequest) -> list[str]:
        # Where the domain is now: one moved outside Corral is deleted there (or refused
        # while it runs), not merely forgotten.
        row, host, record = await self._inventory.found(name)
        notes: list[str] = []
        if record is not None:
            if record.state not in (VmState.SHUTOFF, VmState.CRASHED):
                raise Conflict(
                    f"VM {name!r} is {record.state.value}: shut it down or stop it first"
                )
            await host.undefine_domain(record.uuid)
            await host.consoles.delete_serial_log(record.name)
            # Its cloud-init seed holds password hashes and user-data: it goes with the VM.
            seed = f"{record.name}-cidata.iso"
            if await host.storage.volume_exists(seed):
                await host.storage.delete_volume(seed)
            if req.delete_disks:
                kept = await self._inventory.db.read(lambda s: store.template_bases(s, host.name))
                notes = await _delete_disks(host, record, self.storage, kept)
            else:
                notes = await _kept_disks(host, record)
        uuid = row.uuid

        def forget(s: Session) -> None:
            store.forget_cloud_init(s, uuid)
            store.delete_vm(s, name)

        await self._inventory.db(forget)
        return notes


async def _kept_disks(host: LibvirtHost, record: DomainRecord) -> list[str]:
    """The note that the VM's disks stay: their volume names in the host's pool (their paths
    where they are not volumes of the pool); none when it has no disks."""
    volumes = {v.path: v.name for v in await host.storage.list_volumes()}
    kept = [volumes.get(d.path, d.path) for d in record.disks if d.device == "disk" and d.path]
    return [f"disks kept on host {host.name}: {', '.join(kept)}"] if kept else []


async def _delete_network_volume(
    host: LibvirtHost, path: str, storage: StorageDomains | None
) -> str | None:
    """Delete the volume at ``path`` (``nfs://…``) through its domain's driver, on the VM's
    host (it reached the domain to run the VM); None when deleted, else why it was kept."""
    domain = (await storage.holders([path])).get(path) if storage is not None else None
    if storage is None or domain is None:
        return "it is in no storage domain Corral knows"
    driver = storage.driver(await storage.config(domain))
    volumes = await driver.list_volumes(host)
    mine = [v for v in volumes if v.path == path]
    if not mine:
        return f"storage domain {domain} has no such volume any more"
    if any(v.backing == path for v in volumes):
        return "a linked clone still uses it as its base"
    await driver.delete_volume(host, mine[0].name)
    return None


async def _delete_disks(
    host: LibvirtHost,
    record: DomainRecord,
    storage: StorageDomains | None = None,
    templates: set[str] | frozenset[str] = frozenset(),
) -> list[str]:
    """Delete the VM's pool volumes, then any linked-clone base nothing uses any more (but
    a template's: ``templates``, their paths, stay until the template is deleted)."""
    volumes = {v.path: v for v in await host.storage.list_volumes()}
    notes = []
    doomed: list[VolumeRef] = []
    for disk in record.disks:
        if disk.device != "disk":
            continue
        vol = volumes.get(disk.path)
        source = network_source(disk.path)
        if source is not None and source.protocol == "iscsi":
            notes.append(f"kept {disk.path}: {LUN_KEPT}")
        elif source is not None:
            why = await _delete_network_volume(host, disk.path, storage)
            if why is not None:
                notes.append(f"kept {disk.path}: {why}")
        elif vol is None:
            why = await host.domain_pools.delete_volume_at(disk.path)
            if why is not None:
                notes.append(f"kept {disk.path}: {why}")
        elif backs_another(vol, volumes.values()):
            notes.append(f"kept {vol.name}: a linked clone still uses it as its base")
        else:
            doomed.append(vol)
    in_use = {d.path for r in await host.list_domains() for d in r.disks}
    while doomed:
        vol = doomed.pop()
        await host.storage.delete_volume(vol.name)
        del volumes[vol.path]
        base = volumes.get(vol.backing or "")
        if (
            base
            and base.path not in in_use
            and not is_image_volume(base.name)  # the library's: stays until deleted there
            and base.path not in templates
            and not backs_another(base, volumes.values())
        ):
            doomed.append(base)
    return notes
