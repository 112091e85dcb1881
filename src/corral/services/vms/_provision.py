"""Creating a VM: validate everything first, then build volumes and the domain, and roll back
whatever was built if a later step fails (no orphan volume, domain or row)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from corral import store
from corral.errors import Conflict, CorralError, InsufficientResources, NotFound
from corral.model.image import ImageKind
from corral.model.storage_domain import LOCAL_DOMAIN
from corral.model.vm import DiskSpec, NicSpec, VmSpec
from corral.services._db import Db
from corral.services.images import image_volume
from corral.services.principal import Principal
from corral.services.storage import StorageDriver
from corral.services.tasks import TaskContext
from corral.services.vms import _hardware
from corral.services.vms._existing import VolumeUsers, existing_volume
from corral.services.vms._volumes import GIB, volume_name
from corral.virt import HEAD_BYTES, DomainRecord, LibvirtHost, VolumeRef, probe_header

log = logging.getLogger(__name__)


def is_local(uri: str) -> bool:
    # Paths in a request are checked only when the manager shares the host's filesystem.
    return "://" in uri and uri.split("://", 1)[1].startswith("/")


def _check_file(label: str, path: str) -> None:
    # The request is well formed either way: what is missing is on the host, like an unknown
    # host or base image (404), or the file's permissions are in the way (409).
    if not os.path.isfile(path):
        raise NotFound(f"{label} {path!r} does not exist or is not a file: check the path")
    if not os.access(path, os.R_OK):
        raise Conflict(f"{label} {path!r} is not readable by Corral: check its permissions")


def _probe_file(path: str) -> None:
    """InvalidRequest if the image file is one Corral refuses (``probe_header``)."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    probe_header(head, os.path.getsize(path), path)


async def base_volume(host: LibvirtHost, name: str) -> str | None:
    """The volume a ``base_image`` of ``name`` means: a pool volume of that name (as before
    the library existed), else the library's disk image ``name``; None when neither exists."""
    for volume in (name, image_volume(ImageKind.DISK, name)):
        if await host.storage.volume_exists(volume):
            return volume
    return None


async def validate(
    db: Db,
    host: LibvirtHost,
    spec: VmSpec,
    drivers: Mapping[str, StorageDriver] | None = None,
    users: VolumeUsers | None = None,
) -> VmSpec:
    """Every check that needs no change on the host. Returns the spec with its architecture,
    machine type and accelerator decided. ``drivers``: those of the storage domains (other
    than local) the disks use; ``users``: who uses the volumes disks take as they are."""
    if await db.read(lambda s: store.find_vm(s, spec.name)) is not None:
        raise Conflict(f"a VM named {spec.name!r} already exists; choose another name")
    try:
        await host.get_domain(spec.name)
    except NotFound:
        pass
    else:
        raise Conflict(
            f"host {host.name!r} already has a libvirt domain named {spec.name!r}; choose another "
            "name (it will appear in Corral's inventory at the next reconcile)"
        )
    caps = await host.capabilities()
    memory = max(spec.memory_mib, spec.max_memory_mib or 0)
    if memory > caps.memory_mib:
        raise InsufficientResources(
            f"host {host.name!r} has {caps.memory_mib} MiB of memory, VM {spec.name!r} asks for "
            f"{memory} MiB: ask for less or pick another host"
        )
    spec = await _hardware.check_spec(host, spec)
    for disk in spec.disks:
        await _check_disk(host, spec.name, disk, drivers or {}, users or {})
    for label, path in (
        # Not image names of the library: those are resolved to their volumes later.
        ("cdrom", spec.cdrom),
        ("boot kernel", spec.boot.kernel),
        ("boot initrd", spec.boot.initrd),
    ):
        if path is not None and path.startswith("/"):
            await _check_host_file(host, label, path)
    return spec


async def _check_disk(
    host: LibvirtHost,
    vm: str,
    disk: DiskSpec,
    drivers: Mapping[str, StorageDriver],
    users: VolumeUsers,
) -> None:
    """``validate``'s checks of one disk of VM ``vm``."""
    if disk.volume is not None:
        await existing_volume(host, disk, drivers, users)
        return
    if disk.domain != LOCAL_DOMAIN:
        await _check_domain_disk(host, vm, disk, drivers[disk.domain])
        return
    if disk.import_path is not None:
        _check_file(f"disk {disk.name!r}: import_path", disk.import_path)
        # Refused at once (422) rather than by the import's task.
        await asyncio.to_thread(_probe_file, disk.import_path)
    if disk.base_image is not None:
        base = await base_volume(host, disk.base_image)
        if base is None:
            raise NotFound(
                f"disk {disk.name!r}: base image {disk.base_image!r} is neither a disk image "
                f"of the library nor a volume in Corral's pool on host {host.name!r}; upload "
                "it first (`corral image upload FILE --kind disk`)"
            )
        await host.storage.checked_volume(base)
    if await host.storage.volume_exists(volume_name(vm, disk.name)):
        raise Conflict(
            f"volume {volume_name(vm, disk.name)!r} already exists on host "
            f"{host.name!r}; delete it or choose another VM name"
        )


async def _check_domain_disk(
    host: LibvirtHost, vm: str, disk: DiskSpec, driver: StorageDriver
) -> None:
    """A disk in a storage domain: its volume name free there, its base a volume there, its
    size within the domain's free space."""
    names = {v.name for v in await driver.list_volumes(host)}
    volume, domain = volume_name(vm, disk.name), disk.domain
    if volume in names:
        raise Conflict(
            f"volume {volume!r} already exists in storage domain {domain}; delete it or choose "
            "another VM name"
        )
    if disk.base_image is not None and domain_base(disk.base_image, names) is None:
        raise NotFound(
            f"disk {disk.name!r}: base image {disk.base_image!r} is neither a volume nor a disk "
            f"image of storage domain {domain} (`corral volume list --domain {domain}`, "
            f"`corral image list --domain {domain}`)"
        )
    if disk.size_gib is not None:
        size, free = int(disk.size_gib * GIB), await driver.free_bytes(host)
        if size > free:
            raise InsufficientResources(
                f"storage domain {domain} has {free} bytes ({free / GIB:.1f} GiB) free, disk "
                f"{disk.name!r} needs {size} bytes ({size / GIB:.1f} GiB): ask for less"
            )


async def _check_host_file(host: LibvirtHost, label: str, path: str) -> None:
    """The file must be there on the VM's host, or the VM would be created and then fail to
    start ("Cannot access storage file"). A remote host's files are looked at by its libvirt."""
    if is_local(host.uri):
        _check_file(label, path)
    elif await host.find_file(path) is None:
        raise NotFound(
            f"{label} {path!r} does not exist on host {host.name!r} or is not a file: check the "
            "path on that host"
        )


@dataclass
class _Built:
    #: The VM's disks, in order (made for it, or existing volumes taken as they are).
    volumes: list[VolumeRef] = field(default_factory=list)
    #: The volumes made for the VM, each with the storage domain driver it was made through
    #: (None: the host's own pool): a rollback deletes these only.
    made: list[tuple[VolumeRef, StorageDriver | None]] = field(default_factory=list)
    domain: DomainRecord | None = None


async def resolve_nics(host: LibvirtHost, nics: list[NicSpec]) -> list[NicSpec]:
    if not any(n.network == "nat" for n in nics):
        return nics
    network = await host.ensure_nat_network()
    target = network or "user"
    return [n.model_copy(update={"network": target}) if n.network == "nat" else n for n in nics]


async def _build_volumes(
    host: LibvirtHost,
    spec: VmSpec,
    built: _Built,
    ctx: TaskContext | None,
    drivers: Mapping[str, StorageDriver],
) -> None:
    for index, disk in enumerate(spec.disks):
        name = volume_name(spec.name, disk.name)
        if disk.volume is not None:  # checked by validate, taken as it is
            built.volumes.append(await existing_volume(host, disk, drivers, {}))
            continue
        if disk.domain != LOCAL_DOMAIN:
            driver = drivers[disk.domain]
            vol = await _domain_volume(host, driver, name, disk)
            # Every host reaching the domain may open it (a migration copies nothing).
            built.volumes.append(dataclasses.replace(vol, shared=True))
            built.made.append((vol, driver))
            continue
        if disk.size_gib is not None:
            vol = await host.storage.create_blank_volume(name, int(disk.size_gib * GIB))
        elif disk.base_image is not None:
            base = await base_volume(host, disk.base_image)
            vol = await host.storage.create_linked_clone(name, base or disk.base_image)
        else:
            assert disk.import_path is not None
            vol = await _import(host, name, disk.import_path, ctx, index, len(spec.disks))
        built.volumes.append(vol)
        built.made.append((vol, None))


async def _domain_volume(
    host: LibvirtHost, driver: StorageDriver, name: str, disk: DiskSpec
) -> VolumeRef:
    if disk.size_gib is not None:
        return await driver.create_volume(host, name, int(disk.size_gib * GIB))
    assert disk.base_image is not None  # imports stay local (refused before)
    names = {v.name for v in await driver.list_volumes(host)}
    base = domain_base(disk.base_image, names) or disk.base_image
    return await driver.create_linked_clone(host, name, base)


def domain_base(name: str, volumes: set[str]) -> str | None:
    """The volume a domain disk's ``base_image`` means: a volume of that name, else the
    domain's disk image ``name`` (the image library's ``_disk.NAME``)."""
    for volume in (name, image_volume(ImageKind.DISK, name)):
        if volume in volumes:
            return volume
    return None


async def _import(
    host: LibvirtHost, name: str, path: str, ctx: TaskContext | None, index: int, count: int
) -> VolumeRef:
    if ctx is not None:
        await ctx.progress(index / count, phase=f"importing {os.path.basename(path)} as {name}")

    def progress(done: int, total: int) -> None:
        if ctx is not None and total:
            ctx.report((index + done / total) / count, bytes_done=done, bytes_total=total)

    def cancelled() -> bool:
        # Fenced (another instance took the task over): the copy stops too, not only the
        # coroutine that waits for it.
        return ctx is not None and (ctx.cancel_requested or ctx.fenced)

    return await host.storage.import_volume(
        name, Path(path), progress=progress, cancelled=cancelled
    )


async def _rollback(host: LibvirtHost, built: _Built) -> None:
    if built.domain is not None:
        try:
            await host.undefine_domain(built.domain.uuid)
        except CorralError as exc:
            log.error("rollback: could not undefine %s: %s", built.domain.name, exc.message)
    for vol, owner in reversed(built.made):
        try:
            if owner is None:
                await host.storage.delete_volume(vol.name)
            else:
                await owner.delete_volume(host, vol.name)
        except CorralError as exc:
            log.error("rollback: could not delete volume %s: %s", vol.name, exc.message)


async def provision(
    db: Db,
    host: LibvirtHost,
    spec: VmSpec,
    principal: Principal,
    ctx: TaskContext | None,
    drivers: Mapping[str, StorageDriver] | None = None,
) -> str:
    """Build the VM described by an already validated spec; returns the domain UUID."""
    built = _Built()
    try:
        await _build_volumes(host, spec, built, ctx, drivers or {})
        spec = spec.model_copy(update={"nics": await resolve_nics(host, spec.nics)})
        if ctx is not None:
            await ctx.progress(phase="defining the domain", force=True)
        built.domain = await host.define_domain(spec, built.volumes)
        uuid = built.domain.uuid
        await db(
            lambda s: store.add_vm(
                s,
                uuid=uuid,
                name=spec.name,
                host=host.name,
                created_by=principal.user,
                description=spec.description,
                accelerator=spec.accelerator,
            )
        )
    except BaseException:
        await _rollback(host, built)
        raise
    return uuid
