"""The image library: ISO and disk images in each host's storage pool.

    __init__.py  ImageLibrary: list, show, delete; which image a CD-ROM or a disk may use
    upload.py    receiving an upload (a task): checks first, then streamed into a new volume
    room.py      pool space promised to running uploads (so that they never overbook a pool)
    holders.py   which hosts hold the images a new VM names (placement chooses among them)
    _names.py    the volume names that mark images (``_iso.NAME``, ``_disk.NAME``)

Images live per host (a VM uses the images of its own host). While an image is uploaded,
deleted or inserted, it is *held*: the other two are refused with a Conflict instead of racing.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from corral.errors import Conflict, CorralError, HostError, NotFound
from corral.model.common import did_you_mean
from corral.model.image import ImageInfo, ImageKind, ImageUploaded
from corral.services.audit import AuditService
from corral.services.hosts import HostService
from corral.services.images import holders
from corral.services.images._names import image_volume, is_image_volume, parse_image_volume
from corral.services.images.holders import ImageNeed, image_needs
from corral.services.images.room import PoolRoom
from corral.services.images.upload import Upload
from corral.services.principal import Principal
from corral.services.tasks import TaskService
from corral.virt import LibvirtHost, VolumeRef

__all__ = [
    "ImageLibrary",
    "ImageNeed",
    "backing_chain",
    "image_needs",
    "image_volume",
    "is_image_volume",
    "parse_image_volume",
]


def backing_chain(path: str, volumes: dict[str, VolumeRef]) -> list[str]:
    """``path`` and the backing files under it, as far as they are pool volumes."""
    chain = [path]
    while (vol := volumes.get(chain[-1])) is not None and vol.backing and len(chain) < 64:
        chain.append(vol.backing)
    return chain


async def host_images(host: LibvirtHost) -> list[ImageInfo]:
    """The images of one host, with the VMs that use each (directly, or through a chain of
    linked clones standing on a disk image)."""
    volumes = await host.storage.list_volumes()
    by_path = {v.path: v for v in volumes}
    users: dict[str, set[str]] = {}
    for path, domains in (await host.disk_users()).items():
        for link in backing_chain(path, by_path):
            users.setdefault(link, set()).update(domains)
    images = []
    for vol in volumes:
        parsed = parse_image_volume(vol.name)
        if parsed is None:
            continue
        kind, name = parsed
        images.append(
            ImageInfo(
                name=name,
                host=host.name,
                kind=kind,
                # libvirt's pool refresh names what it probes in raw files ("iso"): QEMU
                # reads all of them as raw.
                format="qcow2" if vol.format == "qcow2" else "raw",
                size_bytes=vol.allocation_bytes or vol.capacity_bytes,
                capacity_bytes=vol.capacity_bytes,
                path=vol.path,
                used_by=sorted(users.get(vol.path, ())),
            )
        )
    return sorted(images, key=lambda i: i.name)


def _clones_on(image: ImageInfo, volumes: list[VolumeRef]) -> list[str]:
    by_path = {v.path: v for v in volumes}
    return sorted(v.name for v in volumes if image.path in backing_chain(v.path, by_path)[1:])


class ImageLibrary:
    def __init__(self, hosts: HostService, tasks: TaskService, audit: AuditService) -> None:
        self._hosts = hosts
        self._tasks = tasks
        self._audit = audit
        #: (host, image) -> what holds it ("an upload (task …)", "deletion", "insertion …").
        self._held: dict[tuple[str, str], str] = {}
        #: Pool space promised to the uploads running on each host.
        self._room = PoolRoom()

    # -- holding an image while it changes ---------------------------------------------------
    @asynccontextmanager
    async def hold(self, host: str, name: str, what: str) -> AsyncIterator[None]:
        """Fail fast with Conflict when the image is already held."""
        key = (host, name)
        current = self._held.get(key)
        if current is not None:
            raise Conflict(
                f"image {name!r} on host {host!r} is busy with {current}; try again when it "
                "is done (`corral task list`)"
            )
        self._held[key] = what
        try:
            yield
        finally:
            del self._held[key]

    def _relabel(self, host: str, name: str, what: str) -> None:
        self._held[(host, name)] = what

    def held(self, host: str, name: str) -> str | None:
        return self._held.get((host, name))

    # -- reading -----------------------------------------------------------------------------
    async def list_images(self, host_name: str | None = None) -> list[ImageInfo]:
        """Every connected host's images (or one host's); images still being uploaded are not
        listed (their task is)."""
        hosts = [self._hosts.connected(host_name)] if host_name else self._hosts.all()
        result: list[ImageInfo] = []
        for host in hosts:
            if host.connected:
                found = await host_images(host)
                result.extend(i for i in found if not self._uploading(host.name, i.name))
        return result

    def _uploading(self, host: str, name: str) -> bool:
        return (self.held(host, name) or "").startswith("an upload")

    async def on_host(self, host: LibvirtHost, name: str) -> ImageInfo | None:
        if self._uploading(host.name, name):
            return None
        return next((i for i in await host_images(host) if i.name == name), None)

    async def locate(
        self, name: str, host_name: str | None = None
    ) -> tuple[LibvirtHost, ImageInfo]:
        """The image ``name`` of ``host_name``, or of whichever connected host has it."""
        hosts = [self._hosts.connected(host_name)] if host_name else self._hosts.all()
        found = [
            (host, image)
            for host in hosts
            if host.connected and (image := await self.on_host(host, name)) is not None
        ]
        if not found:
            where = f"host {host_name!r}" if host_name else "any connected host"
            # Every role may list the images, so naming the close ones reveals nothing.
            close = did_you_mean(name, {i.name for i in await self.list_images(host_name)})
            raise NotFound(
                f"no image named {name!r} on {where}: "
                + (close or "`corral image list` shows them")
            )
        if len(found) > 1:
            names = ", ".join(h.name for h, _ in found)
            raise Conflict(
                f"image {name!r} exists on hosts {names}: say which one (?host=, --host)"
            )
        return found[0]

    async def get(self, name: str, host_name: str | None = None) -> ImageInfo:
        return (await self.locate(name, host_name))[1]

    async def lacking(self, vm: str, needs: list[ImageNeed]) -> dict[str, str]:
        """Which of ``needs`` each connected host lacks (see ``holders.lacking``: NotFound or
        Conflict when no host has them all); nothing to ask when the VM names no image."""
        if not needs:
            return {}
        held: dict[str, set[ImageNeed]] = {}
        for host in self._hosts.all():
            if not host.connected:
                continue
            try:
                volumes = {v.name for v in await host.storage.list_volumes()}
            except CorralError:
                volumes = set()  # a host whose pool cannot be read holds nothing usable now
            uploading = {n for n in needs if self._uploading(host.name, n.name)}
            held[host.name] = {n for n in needs if not volumes.isdisjoint(n.volumes)} - uploading
        close: dict[ImageNeed, str] = {}
        if any(not any(n in got for got in held.values()) for n in needs):
            library = await self.list_images()
            for need in needs:
                names = {i.name for i in library if i.kind is need.kind}
                close[need] = did_you_mean(need.name, names)
        return holders.lacking(vm, needs, held, close)

    async def iso_for(self, host: LibvirtHost, name: str, vm: str) -> ImageInfo:
        """The ISO image ``name`` of ``host`` for VM ``vm``'s CD-ROM drive; NotFound or Conflict
        saying why not (unknown; on another host, a disk image)."""
        return await self.image_for(host, name, vm, ImageKind.ISO)

    async def image_for(self, host: LibvirtHost, name: str, vm: str, kind: ImageKind) -> ImageInfo:
        """The image ``name`` of ``kind`` on ``host`` for VM ``vm``; NotFound or Conflict saying
        why not (unknown; on another host; another kind)."""
        image = await self.on_host(host, name)
        if image is None:
            elsewhere = [
                h.name
                for h in self._hosts.all()
                if h is not host and h.connected and await self.on_host(h, name) is not None
            ]
            if elsewhere:
                raise Conflict(
                    f"image {name!r} is on host {', '.join(elsewhere)}, but VM {vm!r} is on "
                    f"host {host.name!r}: upload it to {host.name!r} too"
                )
            close = did_you_mean(name, {i.name for i in await host_images(host) if i.kind is kind})
            raise NotFound(
                f"no image named {name!r} on host {host.name!r} (VM {vm!r}'s host): "
                + (close or "`corral image list` shows the library")
            )
        if image.kind is not kind:
            takes = {ImageKind.ISO: "a CD-ROM drive takes ISO images only",
                     ImageKind.KERNEL: "kernel boot takes kernel images only (kind kernel)",
                     ImageKind.DISK: "disks stand on disk images only"}[kind]  # fmt: skip
            raise Conflict(f"image {name!r} is a {image.kind.value} image; {takes}")
        return image

    # -- changing ----------------------------------------------------------------------------
    async def upload(
        self,
        principal: Principal,
        name: str,
        *,
        host_name: str | None,
        kind: ImageKind | None,
        total: int,
        chunks: AsyncIterator[bytes],
    ) -> ImageUploaded:
        """Receive an image of ``total`` bytes from ``chunks`` as a task; see ``upload.py``."""
        host = self._hosts.connected(host_name or self._hosts.get().name)
        async with self.hold(host.name, name, "an upload"):
            upload = Upload(
                host, name, kind, total, principal, self._tasks, self._audit, self._room
            )
            async with upload.check() as promise:
                relabel = functools.partial(self._relabel, host.name, name)
                task = await upload.run(chunks, relabel, promise)
        image = await self.on_host(host, name)
        if image is None:
            raise HostError(f"image {name!r} was uploaded but is gone from host {host.name!r}")
        return ImageUploaded(image=image, task=task)

    async def delete(self, principal: Principal, name: str, host_name: str | None = None) -> None:
        host, image = await self.locate(name, host_name)
        async with self.hold(host.name, name, "deletion"):
            image = await self.on_host(host, name) or image
            if image.used_by:
                vms = ", ".join(image.used_by)
                raise Conflict(
                    f"image {name!r} on host {host.name!r} is used by VM(s) {vms}: eject it "
                    "(`corral vm cdrom VM --eject`) or delete those VMs first"
                )
            clones = _clones_on(image, await host.storage.list_volumes())
            if clones:
                raise Conflict(
                    f"image {name!r} on host {host.name!r} is the base of the linked clone "
                    f"volume(s) {', '.join(clones)}: delete them first"
                )
            await host.storage.delete_volume(image_volume(image.kind, name))
