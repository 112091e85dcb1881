"""Attaching and detaching disks and network interfaces.

A running VM gets a device ``live`` where its bus allows hot-plug — virtio disks and NICs (PCI
on x86 and ARM, CCW on s390x) and SCSI disks; SATA and IDE disks are added or removed at its
next start — and keeps it in its definition; a shut-off VM's definition changes (``offline``).
The answer says which (``VmChange.applied``). Every check happens before the host changes: the
boot disk of a running VM stays, a volume another VM uses is not attached twice, a new volume
is deleted again if the attach fails.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from corral.errors import (
    Conflict,
    CorralError,
    HostError,
    HostUnreachable,
    InvalidRequest,
    NotFound,
)
from corral.model.vm import DiskBus, DiskInfo, NicInfo, NicSpec
from corral.model.vm_edit import Applied, ChangeMode, DiskAttachRequest, NicAttachRequest, VmChange
from corral.services.locks import OperationLocks
from corral.services.principal import Principal
from corral.services.vms import _hardware
from corral.services.vms._provision import base_volume
from corral.services.vms._volumes import GIB, volume_name
from corral.services.vms.edit import ACTIVE
from corral.services.vms.inventory import VmInventory
from corral.virt import DomainRecord, LibvirtHost, VolumeRef
from corral.virt._edit import add_device, device_element, remove_device
from corral.virt.domain_xml import Domain, free_target
from corral.virt.domain_xml.builder import NIC_NAT, disk_element, interface_element
from corral.virt.domain_xml.osxml import Boot

log = logging.getLogger(__name__)

#: How long a hot-unplug may take the guest (beyond libvirt's own 5 s).
RELEASE_TIMEOUT_S = 15.0
#: The whole wait for a guest to release a device, as the user sees it.
UNPLUG_WAIT_S = 5.0 + RELEASE_TIMEOUT_S
#: Disk buses whose devices can be plugged into a running guest.
HOTPLUG_BUSES = frozenset({DiskBus.VIRTIO, DiskBus.SCSI})


def _when(vm: str, active: bool, mode: ChangeMode | None, hotplug: bool, what: str) -> Applied:
    """How a device change reaches the VM; Conflict where ``mode`` asks for the impossible."""
    if not active:
        if mode is ChangeMode.LIVE:
            raise Conflict(
                f"VM {vm!r} is shut off: nothing can change live. Leave mode out (its "
                "definition changes) or start it first"
            )
        return Applied.OFFLINE
    if mode is ChangeMode.NEXT_START:
        return Applied.NEXT_START
    if not hotplug:
        if mode is ChangeMode.LIVE:
            raise Conflict(
                f"{what} cannot be plugged in or out while VM {vm!r} runs: ask for mode "
                "next_start, or shut the VM down first"
            )
        return Applied.NEXT_START
    return Applied.LIVE


@dataclass(frozen=True)
class _Removal:
    applied: Applied
    live: bool  # detach from the running guest
    config: bool  # detach from the definition


def _removal(
    vm: str, active: bool, mode: ChangeMode | None, hotplug: bool, pending: str | None, what: str
) -> _Removal:
    """How a device leaves the VM. One waiting to be attached at the next start only leaves
    the definition; one already leaving at the next start only leaves the running guest."""
    if pending == "attach":
        return _Removal(Applied.NEXT_START, live=False, config=True)
    if pending == "detach":
        if mode is ChangeMode.NEXT_START or not hotplug:
            raise Conflict(f"this device leaves VM {vm!r} at its next start already")
        return _Removal(Applied.LIVE, live=True, config=False)
    applied = _when(vm, active, mode, hotplug, what)
    return _Removal(applied, live=applied is Applied.LIVE, config=True)


def boot_disk(record: DomainRecord) -> str | None:
    """The target of the disk the VM boots from (None: it boots a kernel or a CD-ROM only):
    the disk with the lowest ``<boot order>``, else the first disk when the VM boots from hd."""
    domain = Domain.from_xml(record.xml)
    if domain.os.kernel:
        return None
    disks = [d for d in domain.devices.disks if d.device == "disk" and d.target_dev]
    ordered = sorted(
        (int(order), d.target_dev)
        for d in disks
        if (order := str(d.node.xpath("string(boot/@order)"))).isdigit()
    )
    if ordered:
        return ordered[0][1]
    if domain.os.boot_devices and Boot.DEV_HD not in domain.os.boot_devices:
        return None
    return disks[0].target_dev if disks else None


class VmDevices:
    #: Which of some cluster networks a host does not have applied (the networks service
    #: sets it; None: not asked).
    not_applied: Callable[[str, set[str]], Awaitable[list[str]]] | None = None

    def __init__(self, inventory: VmInventory, locks: OperationLocks) -> None:
        self._inventory = inventory
        self._locks = locks

    async def _done(self, name: str, applied: Applied, change: str) -> VmChange:
        return VmChange(applied=applied, changes=[change], vm=await self._inventory.get(name))

    # -- disks -------------------------------------------------------------------------------
    async def attach_disk(
        self, principal: Principal, name: str, req: DiskAttachRequest
    ) -> VmChange:
        async with self._locks.hold(name, "a disk attach"):
            _row, host, record = await self._inventory.record(name)
            where = await _hardware.target(host, record.arch, record.machine, record.accelerator)
            _hardware.check_disk_bus(where, req.name, req.bus)
            if any(d.name == req.name for d in record.disks):
                raise Conflict(f"VM {name!r} has a disk named {req.name!r} already: pick another")
            active = record.state in ACTIVE
            applied = _when(name, active, req.mode, req.bus in HOTPLUG_BUSES,
                            f"{req.bus.value} disks")  # fmt: skip
            existing = await self._existing_volume(host, name, req)
            used = _targets(record)
            target = free_target(req.bus, used)
            created = None
            if existing is None:
                created = await _new_volume(host, name, req)
            volume = existing or created
            assert volume is not None
            xml = disk_element(volume, target, req.bus).to_xml()
            try:
                if applied is Applied.LIVE:
                    await host.changes.attach_device(record.uuid, xml, live=True)
                    await host.changes.set_disk_name(record.uuid, target, req.name, live=True)
                else:
                    await host.changes.redefine(
                        record.uuid, add_device(xml, req.name), "add a disk"
                    )
            except CorralError:
                if created is not None:
                    await _delete_quietly(host, created.name)
                raise
        return await self._done(
            name, applied, f"disk {req.name} ({target}, {volume.name}) attached"
        )

    async def _existing_volume(
        self, host: LibvirtHost, vm: str, req: DiskAttachRequest
    ) -> VolumeRef | None:
        if req.volume is None:
            wanted = volume_name(vm, req.name)
            if await host.storage.volume_exists(wanted):
                raise Conflict(
                    f"volume {wanted!r} already exists on host {host.name!r}: attach it with "
                    f"volume={wanted}, or give the disk another name"
                )
            return None
        volume = await host.storage.checked_volume(req.volume)
        if volume is None:
            raise NotFound(
                f"no volume {req.volume!r} in Corral's pool on host {host.name!r}: check the name "
                "(`corral vm show` lists the paths of a VM's disks)"
            )
        users = (await host.disk_users()).get(volume.path, set())
        if users:
            who = ", ".join(sorted(users))
            raise Conflict(
                f"volume {req.volume!r} is in use by VM {who}: detach it there first, or attach a "
                "copy (a linked clone: base_image)"
            )
        return volume

    async def detach_disk(
        self,
        principal: Principal,
        name: str,
        disk: str,
        mode: ChangeMode | None,
        delete_volume: bool,
    ) -> VmChange:
        async with self._locks.hold(name, "a disk detach"):
            _row, host, record = await self._inventory.record(name)
            found = _find_disk(record, disk)
            active = record.state in ACTIVE
            if active and found.target == boot_disk(record) and found.pending != "attach":
                raise Conflict(
                    f"disk {found.name!r} ({found.target}) is the boot disk of VM {name!r}, which "
                    "runs: shut it down first"
                )
            hotplug = found.bus in {b.value for b in HOTPLUG_BUSES}
            step = _removal(name, active, mode, hotplug, found.pending, f"{found.bus} disks")
            if delete_volume and step.applied is Applied.NEXT_START and found.pending != "attach":
                raise Conflict(
                    f"the running VM {name!r} keeps using disk {found.name!r} until its next "
                    "start: detach it without delete_volume now, and delete the volume later"
                )
            await _remove(host, record, step, "disk", found.target)
            applied = step.applied
            note = ""
            if delete_volume:
                note = await _delete_volume(host, found)
        return await self._done(name, applied, f"disk {found.name} ({found.target}) detached{note}")

    # -- network interfaces ------------------------------------------------------------------
    async def attach_nic(self, principal: Principal, name: str, req: NicAttachRequest) -> VmChange:
        async with self._locks.hold(name, "a NIC attach"):
            _row, host, record = await self._inventory.record(name)
            where = await _hardware.target(host, record.arch, record.machine, record.accelerator)
            _hardware.check_nic_model(where, req.model)
            macs = {n.mac for n in record.nics}
            if req.mac is not None and req.mac in macs:
                raise Conflict(f"VM {name!r} has a network interface with MAC {req.mac} already")
            mac = req.mac or _new_mac(macs)
            if self.not_applied and await self.not_applied(host.name, {req.network}):
                raise Conflict(
                    f"host {host.name} lacks the network {req.network}: VM {name}'s NIC "
                    f"cannot join it there (`corral network show {req.network}` says why)"
                )
            applied = _when(name, record.state in ACTIVE, req.mode, True, "network interfaces")
            nat = await host.ensure_nat_network() if req.network == NIC_NAT else None
            nic = NicSpec(network=req.network, model=req.model, mac=mac)
            xml = interface_element(nic, nat).to_xml()
            if applied is Applied.LIVE:
                await host.changes.attach_device(record.uuid, xml, live=True)
            else:
                await host.changes.redefine(record.uuid, add_device(xml), "add a network interface")
        return await self._done(name, applied, f"network interface {mac} ({req.network}) attached")

    async def detach_nic(
        self, principal: Principal, name: str, mac: str, mode: ChangeMode | None
    ) -> VmChange:
        async with self._locks.hold(name, "a NIC detach"):
            _row, host, record = await self._inventory.record(name)
            found = _find_nic(record, mac)
            active = record.state in ACTIVE
            step = _removal(name, active, mode, True, found.pending, "network interfaces")
            await _remove(host, record, step, "interface", found.mac)
            applied = step.applied
        return await self._done(name, applied, f"network interface {found.mac} detached")


async def _remove(
    host: LibvirtHost, record: DomainRecord, step: _Removal, kind: str, key: str
) -> None:
    """Out of the running guest (hot-unplug: libvirt changes the definition only when the
    guest let the device go) and the definition, or out of the definition alone (a rewrite)."""
    if step.live:
        xml = device_element(record.xml, kind, key)
        try:
            await host.changes.detach_device(record.uuid, xml, live=True, config=step.config)
        except (Conflict, InvalidRequest, HostError) as exc:
            if isinstance(exc, HostUnreachable):
                raise
            # QEMU refuses a second unplug while the guest still handles the first ("guest is
            # busy"), and libvirt has more such words; the user gets what it means for them.
            log.warning("unplugging %s %s from %s: %s", kind, key, record.name, exc.message)
            raise Conflict(_unplug_refused(record.name, kind, key)) from None
        await _released(host, record.uuid, kind, key)
        if kind == "disk":
            await host.changes.set_disk_name(record.uuid, key, None, live=True)
    elif step.config:
        await host.changes.redefine(record.uuid, remove_device(kind, key), f"remove a {kind}")


def _label(kind: str, key: str) -> str:
    return f"disk {key}" if kind == "disk" else f"network interface {key}"


def _unplug_refused(vm: str, kind: str, key: str) -> str:
    return (
        f"VM {vm!r} could not unplug its {_label(kind, key)} now: its guest is still busy with "
        "an earlier unplug request, or refused this one. It stays attached: try again in a "
        "moment, detach it with mode next_start (it leaves at the next start), or shut the VM "
        "down and detach it then"
    )


def _not_released(vm: str, kind: str, key: str) -> str:
    kept = "; its volume stays" if kind == "disk" else ""
    return (
        f"VM {vm!r} did not release its {_label(kind, key)}: the guest did not answer the "
        f"unplug request within {UNPLUG_WAIT_S:g} s (no hot-plug support in it, or it is "
        "busy). It is out of the VM's definition and stays in the running guest until the guest "
        f"releases it or the VM is shut off{kept}: shut the VM down to have it gone"
    )


async def _released(host: LibvirtHost, uuid: str, kind: str, key: str) -> None:
    """Wait until the guest let the device go. libvirt gives up waiting after 5 s and leaves
    the unplug running; a PCIe unplug alone waits 5 s in the guest (the attention button's
    grace period), so look a while longer, then say the guest still holds it."""
    deadline = time.monotonic() + RELEASE_TIMEOUT_S
    while True:
        record = await host.get_domain(uuid)
        present = (
            any(d.target == key and d.pending != "attach" for d in record.disks)
            if kind == "disk"
            else any(n.mac == key and n.pending != "attach" for n in record.nics)
        )
        if not present:
            return
        if time.monotonic() >= deadline:
            raise Conflict(_not_released(record.name, kind, key))
        await asyncio.sleep(0.25)


def _targets(record: DomainRecord) -> set[str]:
    used = {d.target for d in record.disks}
    for xml in (record.xml, record.inactive_xml):
        if xml:
            used |= {d.target_dev for d in Domain.from_xml(xml).devices.disks if d.target_dev}
    return used


def _find_disk(record: DomainRecord, disk: str) -> DiskInfo:
    found = next((d for d in record.disks if disk in (d.name, d.target)), None)
    if found is None:
        names = ", ".join(f"{d.name} ({d.target})" for d in record.disks if d.device == "disk")
        raise NotFound(f"VM {record.name!r} has no disk {disk!r}; its disks: {names or 'none'}")
    if found.device == "cdrom":
        raise Conflict(
            f"{found.target} is the CD-ROM drive of VM {record.name!r}: eject its media with "
            "`corral vm cdrom --eject` (drives stay)"
        )
    return found


def _find_nic(record: DomainRecord, mac: str) -> NicInfo:
    found = next((n for n in record.nics if n.mac == mac.lower()), None)
    if found is None:
        macs = ", ".join(n.mac for n in record.nics) or "none"
        raise NotFound(f"VM {record.name!r} has no network interface {mac}; its MACs: {macs}")
    return found


def _new_mac(taken: set[str]) -> str:
    """A locally administered MAC in QEMU's range, 52:54:00:xx:xx:xx."""
    while True:
        mac = "52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))
        if mac not in taken:
            return mac


async def _new_volume(host: LibvirtHost, vm: str, req: DiskAttachRequest) -> VolumeRef:
    name = volume_name(vm, req.name)
    if req.size_gib is not None:
        return await host.storage.create_blank_volume(name, int(req.size_gib * GIB))
    assert req.base_image is not None
    base = await base_volume(host, req.base_image)
    if base is None:
        raise NotFound(
            f"disk {req.name!r}: base image {req.base_image!r} is neither a disk image of the "
            f"library nor a volume in Corral's pool on host {host.name!r}"
        )
    return await host.storage.create_linked_clone(name, base)


async def _delete_quietly(host: LibvirtHost, volume: str) -> None:
    try:
        await host.storage.delete_volume(volume)
    except CorralError as exc:
        log.error("could not delete volume %s after a failed attach: %s", volume, exc.message)


async def _delete_volume(host: LibvirtHost, disk: DiskInfo) -> str:
    """Delete the detached disk's volume if it is in Corral's pool and nothing uses it."""
    volumes = {v.path: v for v in await host.storage.list_volumes()}
    volume = volumes.get(disk.path)
    if volume is None:
        return f"; kept {disk.path}: it is not in Corral's storage pool"
    if any(v.backing in (volume.path, volume.name) for v in volumes.values()):
        return f"; kept {volume.name}: a linked clone uses it as its base"
    if (await host.disk_users()).get(volume.path):
        return f"; kept {volume.name}: another VM uses it"
    await host.storage.delete_volume(volume.name)
    return f"; volume {os.path.basename(volume.path)} deleted"
