"""Disks that are existing volumes used as is (``DiskSpec.volume``): an iSCSI LUN, or any
volume of a domain (``local``: the VM's host's pool) that no other VM uses. Nothing is made
for them, so nothing of theirs is deleted when a create fails part-way."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from corral.errors import Conflict, NotFound
from corral.model.storage_domain import LOCAL_DOMAIN
from corral.model.vm import DiskSpec, VmSpec
from corral.services.images import is_image_volume
from corral.services.storage import StorageDriver
from corral.virt import LibvirtHost, VolumeRef

#: Domain -> disk path -> the VMs whose definitions name it.
VolumeUsers = Mapping[str, Mapping[str, set[str]]]

#: How many volume names a 404 lists before it says how many more there are.
_NAMED = 20


async def volume_users(
    hosts: Iterable[LibvirtHost], host: LibvirtHost, spec: VmSpec
) -> VolumeUsers:
    """Who uses what, for the domains ``spec``'s existing-volume disks name: ``local`` paths
    are the VM's host's own (another host's pool has files of the same paths); a storage
    domain's volume may be open on any host, so every connected host is asked."""
    domains = {d.domain for d in spec.disks if d.volume is not None}
    found: dict[str, dict[str, set[str]]] = {}
    if LOCAL_DOMAIN in domains:
        found[LOCAL_DOMAIN] = dict(await host.disk_users())
    if domains - {LOCAL_DOMAIN}:
        merged: dict[str, set[str]] = {}
        for each in hosts:
            if each.connected:
                for path, vms in (await each.disk_users()).items():
                    merged.setdefault(path, set()).update(vms)
        for domain in domains - {LOCAL_DOMAIN}:
            found[domain] = merged
    return found


def _unknown(disk: DiskSpec, names: list[str]) -> NotFound:
    listed = ", ".join(names[:_NAMED]) or "none"
    if len(names) > _NAMED:
        listed += f" and {len(names) - _NAMED} more"
    where = (
        "Corral's pool on the VM's host"
        if disk.domain == LOCAL_DOMAIN
        else f"storage domain {disk.domain}"
    )
    return NotFound(
        f"disk {disk.name!r}: no volume {disk.volume!r} in {where} (its volumes: {listed})"
    )


def _refuse_in_use(disk: DiskSpec, volume: VolumeRef, users: VolumeUsers) -> None:
    vms = sorted(users.get(disk.domain, {}).get(volume.path, set()))
    if vms:
        raise Conflict(
            f"disk {disk.name!r}: volume {disk.volume} of storage domain {disk.domain} is used "
            f"by VM {', '.join(vms)}: a volume is one VM's disk at a time (detach it there or "
            "delete that VM first)"
        )


async def _local(host: LibvirtHost, disk: DiskSpec) -> VolumeRef:
    assert disk.volume is not None
    if is_image_volume(disk.volume):
        raise Conflict(
            f"disk {disk.name!r}: {disk.volume} is a disk image of the library, shared by the "
            "VMs cloned from it: name it as base_image for a linked clone instead"
        )
    volume = await host.storage.checked_volume(disk.volume)
    if volume is None:
        names = [v.name for v in await host.storage.list_volumes()]
        raise _unknown(disk, sorted(n for n in names if not is_image_volume(n)))
    return volume


async def _in_domain(host: LibvirtHost, disk: DiskSpec, driver: StorageDriver) -> VolumeRef:
    volumes = await driver.list_volumes(host)
    for volume in volumes:
        if volume.name == disk.volume:
            # Every host reaching the domain may open it (a migration copies nothing).
            return dataclasses.replace(volume, shared=True)
    raise _unknown(disk, sorted(v.name for v in volumes))


async def existing_volume(
    host: LibvirtHost,
    disk: DiskSpec,
    drivers: Mapping[str, StorageDriver],
    users: VolumeUsers,
) -> VolumeRef:
    """The volume ``disk`` names, checked: NotFound naming the domain's volumes when it has
    no such volume, Conflict naming the VM(s) already using it."""
    if disk.domain == LOCAL_DOMAIN:
        volume = await _local(host, disk)
    else:
        volume = await _in_domain(host, disk, drivers[disk.domain])
    _refuse_in_use(disk, volume, users)
    return volume
