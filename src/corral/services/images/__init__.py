"""The image library: ISO, disk and kernel images in storage domains.

    __init__.py  ImageLibrary: list, show, delete; which image a CD-ROM or a disk may use
    places.py    where images are kept: one host's pool (``local``) or a shared domain
    upload.py    receiving an upload (a task): checks first, then streamed into a new volume
    room.py      space promised to running uploads (so that they never overbook a place)
    holders.py   which hosts hold the images a new VM names (placement chooses among them)
    _names.py    the volume names that mark images (``_iso.NAME``, ``_disk.NAME``)

Images of the ``local`` domain live per host (a VM uses the images of its own host); an image
of a shared domain (``shared-dir``, ``nfs``) serves every host that reaches the domain. While
an image is uploaded, deleted or inserted, it is *held*: the other two are refused with a
Conflict instead of racing.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from corral.errors import Conflict, CorralError, HostError, NotFound
from corral.model.common import did_you_mean
from corral.model.image import ImageInfo, ImageKind, ImageUploaded
from corral.model.storage_domain import LOCAL_DOMAIN, ReachState, StorageDomainKind
from corral.services.audit import AuditService
from corral.services.hosts import HostService
from corral.services.images import holders
from corral.services.images._names import image_volume, is_image_volume, parse_image_volume
from corral.services.images.holders import ImageNeed, image_needs
from corral.services.images.places import ImagePlace, kind_refusal, upload_refusal
from corral.services.images.room import PoolRoom
from corral.services.images.upload import Upload
from corral.services.principal import Principal
from corral.services.tasks import TaskService
from corral.virt import LibvirtHost, VolumeRef

if TYPE_CHECKING:  # corral.services.storage imports this package (volume listings)
    from corral.services.storage import StorageDomains, StorageDriver

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


def _images_of(
    volumes: list[VolumeRef], disk_users: dict[str, set[str]], place: ImagePlace
) -> list[ImageInfo]:
    """The images among ``volumes`` of ``place``, with the VMs that use each (directly, or
    through a chain of linked clones standing on a disk image)."""
    by_path = {v.path: v for v in volumes}
    users: dict[str, set[str]] = {}
    for path, domains in disk_users.items():
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
                host=None if place.shared else place.host.name,
                domain=place.domain,
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


_TAKES = {
    ImageKind.ISO: "a CD-ROM drive takes ISO images only",
    ImageKind.KERNEL: "kernel boot takes kernel images only (kind kernel)",
    ImageKind.DISK: "disks stand on disk images only",
}


class ImageLibrary:
    def __init__(
        self,
        hosts: HostService,
        tasks: TaskService,
        audit: AuditService,
        domains: StorageDomains | None = None,
    ) -> None:
        self._hosts = hosts
        self._tasks = tasks
        self._audit = audit
        #: Shared storage domains (None: only each host's own pool).
        self._domains = domains
        #: (place key, image) -> what holds it ("an upload (task …)", "deletion", …).
        self._held: dict[tuple[str, str], str] = {}
        #: Space promised to the uploads running in each place.
        self._room = PoolRoom()
        #: The templates whose bases include a volume of a host's pool (set by the runtime):
        #: their image cannot be deleted.
        self.templates_using: Callable[[str, str], Awaitable[list[str]]] | None = None

    # -- holding an image while it changes ---------------------------------------------------
    @asynccontextmanager
    async def hold(self, key: str, name: str, what: str) -> AsyncIterator[None]:
        """Fail fast with Conflict when the image is already held (``key``: a host's name
        for its own pool, ``ImagePlace.key`` for any place)."""
        current = self._held.get((key, name))
        if current is not None:
            _, _, domain = key.partition("domain:")
            where = f"storage domain {domain!r}" if domain else f"host {key!r}"
            raise Conflict(
                f"image {name!r} on {where} is busy with {current}; try again when it is "
                "done (`corral task list`)"
            )
        self._held[(key, name)] = what
        try:
            yield
        finally:
            del self._held[(key, name)]

    def _relabel(self, key: str, name: str, what: str) -> None:
        self._held[(key, name)] = what

    def held(self, key: str, name: str) -> str | None:
        return self._held.get((key, name))

    def _uploading(self, key: str, name: str) -> bool:
        return (self.held(key, name) or "").startswith("an upload")

    # -- places ------------------------------------------------------------------------------
    def _local(self, host: LibvirtHost) -> ImagePlace:
        driver = _local_driver()
        return ImagePlace(LOCAL_DOMAIN, StorageDomainKind.LOCAL, host, driver)

    async def _shared(self, only: str | None = None, host: str | None = None) -> list[ImagePlace]:
        """Shared domains that keep images (``only``: that one), each through a connected
        host reaching it (``host``: through that one, leaving out those it does not reach)."""
        if self._domains is None:
            return []
        places = []
        for info in await self._domains.list_domains():
            if info.name == LOCAL_DOMAIN or (only is not None and info.name != only):
                continue
            config = await self._domains.config(info.name)
            driver = self._domains.driver(config)
            if upload_refusal(info.name, info.kind, driver) is not None:
                continue
            reach = {r.host for r in info.hosts if r.state is ReachState.REACHABLE}
            through = next(
                (h for h in self._hosts.all()
                 if h.connected and h.name in reach and host in (None, h.name)),
                None,
            )  # fmt: skip
            if through is not None:
                places.append(ImagePlace(info.name, info.kind, through, driver))
        return places

    async def place(self, domain: str | None, host_name: str | None) -> ImagePlace:
        """Where an upload goes: ``host_name``'s pool (domain local, the default; first host
        without one), or ``domain`` through ``host_name`` (default: any host reaching it)."""
        if domain in (None, LOCAL_DOMAIN):
            return self._local(self._hosts.connected(host_name or self._hosts.get().name))
        assert domain is not None
        if self._domains is None:
            raise NotFound(f"no storage domain {domain!r}")
        config = await self._domains.config(domain)
        driver = self._domains.driver(config)
        why = upload_refusal(domain, config.kind, driver)
        if why is not None:
            raise Conflict(why)
        reach = await self._domains.reach(domain)
        if host_name is not None:
            host = self._hosts.connected(host_name)
            if reach.get(host_name) is not ReachState.REACHABLE:
                raise Conflict(
                    f"host {host_name} does not reach storage domain {domain}: pick a host "
                    f"that does (`corral storage-domain show {domain}`)"
                )
            return ImagePlace(domain, config.kind, host, driver)
        places = await self._shared(only=domain)
        if not places:
            raise Conflict(
                f"no connected host reaches storage domain {domain}: "
                f"`corral storage-domain check {domain}` checks again"
            )
        return places[0]

    async def _users(self, place: ImagePlace) -> dict[str, set[str]]:
        """Disk paths and the VMs using them: the place's host, or every connected host."""
        if not place.shared:
            return await place.host.disk_users()
        merged: dict[str, set[str]] = {}
        for host in self._hosts.all():
            if host.connected:
                for path, vms in (await host.disk_users()).items():
                    merged.setdefault(path, set()).update(vms)
        return merged

    async def images_in(self, place: ImagePlace) -> list[ImageInfo]:
        """The complete images of ``place`` (those still uploading are not listed: their
        task is)."""
        found = _images_of(await place.list_volumes(), await self._users(place), place)
        return [i for i in found if not self._uploading(place.key, i.name)]

    # -- reading -----------------------------------------------------------------------------
    async def _places(self, host_name: str | None, domain: str | None) -> list[ImagePlace]:
        places = []
        if domain in (None, LOCAL_DOMAIN):
            hosts = [self._hosts.connected(host_name)] if host_name else self._hosts.all()
            places += [self._local(h) for h in hosts if h.connected]
        if domain != LOCAL_DOMAIN:
            if domain is not None and self._domains is not None:
                await self._domains.config(domain)  # NotFound for an unknown domain
            places += await self._shared(only=domain, host=host_name)
        return places

    async def list_images(
        self, host_name: str | None = None, domain: str | None = None
    ) -> list[ImageInfo]:
        """Every connected host's own images and each shared domain's (once), or those of
        one host (its own, and those of the domains it reaches) or of one domain."""
        result: list[ImageInfo] = []
        for place in await self._places(host_name, domain):
            result.extend(await self.images_in(place))
        return result

    async def on_host(self, host: LibvirtHost, name: str) -> ImageInfo | None:
        """Image ``name`` of ``host``'s own pool."""
        return next((i for i in await self.images_in(self._local(host)) if i.name == name), None)

    async def locate(
        self, name: str, host_name: str | None = None, domain: str | None = None
    ) -> tuple[ImagePlace, ImageInfo]:
        """The image ``name`` of ``host_name`` or ``domain``, or wherever it is (once)."""
        found = [
            (place, image)
            for place in await self._places(host_name, domain)
            for image in await self.images_in(place)
            if image.name == name
        ]
        if not found:
            where = (
                f"storage domain {domain!r}" if domain not in (None, LOCAL_DOMAIN)
                else f"host {host_name!r}" if host_name else "any connected host"
            )  # fmt: skip
            # Every role may list the images, so naming the close ones reveals nothing.
            close = did_you_mean(name, {i.name for i in await self.list_images(host_name)})
            raise NotFound(
                f"no image named {name!r} on {where}: "
                + (close or "`corral image list` shows them")
            )
        if len(found) > 1:
            names = ", ".join(p.domain if p.shared else p.host.name for p, _ in found)
            raise Conflict(
                f"image {name!r} exists on hosts {names}: say which one (?host=, --host)"
                if all(not p.shared for p, _ in found)
                else f"image {name!r} exists in several places ({names}): say which one "
                "(?host=, ?domain=; --host, --domain)"
            )
        return found[0]

    async def get(
        self, name: str, host_name: str | None = None, domain: str | None = None
    ) -> ImageInfo:
        return (await self.locate(name, host_name, domain))[1]

    async def lacking(self, vm: str, needs: list[ImageNeed]) -> dict[str, str]:
        """Which of ``needs`` each connected host lacks (see ``holders.lacking``: NotFound or
        Conflict when no host has them all); nothing to ask when the VM names no image.
        A host has what its pool holds and what the shared domains it reaches hold."""
        if not needs:
            return {}
        shared = await self._shared_volumes(needs)
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
            held[host.name] |= shared.get(host.name, set())
        close: dict[ImageNeed, str] = {}
        if any(not any(n in got for got in held.values()) for n in needs):
            library = await self.list_images()
            for need in needs:
                names = {i.name for i in library if i.kind is need.kind}
                close[need] = did_you_mean(need.name, names)
        return holders.lacking(vm, needs, held, close)

    async def _shared_volumes(self, needs: list[ImageNeed]) -> dict[str, set[ImageNeed]]:
        """Per host, the ``needs`` found in the shared domains it reaches."""
        result: dict[str, set[ImageNeed]] = {}
        if self._domains is None:
            return result
        for place in await self._shared():
            try:
                names = {i.name: i.kind for i in await self.images_in(place)}
            except CorralError:
                continue  # a domain that cannot be listed now holds nothing usable now
            have = {n for n in needs if names.get(n.name) is n.kind and _usable(place, n.kind)}
            for host, state in (await self._domains.reach(place.domain)).items():
                if state is ReachState.REACHABLE and have:
                    result.setdefault(host, set()).update(have)
        return result

    async def iso_for(self, host: LibvirtHost, name: str, vm: str) -> ImageInfo:
        """The ISO image ``name`` for VM ``vm``'s CD-ROM drive on ``host``; NotFound or
        Conflict saying why not (unknown; on another host, a disk image)."""
        return await self.image_for(host, name, vm, ImageKind.ISO)

    async def image_for(self, host: LibvirtHost, name: str, vm: str, kind: ImageKind) -> ImageInfo:
        """The image ``name`` of ``kind`` for VM ``vm`` on ``host``: in its own pool, else in
        a shared domain it reaches; NotFound or Conflict saying why not (unknown; on another
        host or in a domain ``host`` does not reach; another kind)."""
        found = await self._local_or_shared(host, name)
        if found is None:
            await self._refuse_missing(host, name, vm, kind)
        assert found is not None
        place, image = found
        if image.kind is not kind:
            raise Conflict(f"image {name!r} is a {image.kind.value} image; {_TAKES[kind]}")
        why = kind_refusal(place.domain, place.kind, kind)
        if why is not None:
            raise Conflict(why)
        return image

    async def _local_or_shared(
        self, host: LibvirtHost, name: str
    ) -> tuple[ImagePlace, ImageInfo] | None:
        """Image ``name`` in ``host``'s own pool, else in a shared domain ``host`` reaches."""
        for place in [self._local(host), *await self._shared(host=host.name)]:
            for image in await self.images_in(place):
                if image.name == name:
                    return place, image
        return None

    async def _refuse_missing(self, host: LibvirtHost, name: str, vm: str, kind: ImageKind) -> None:
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
        for place in await self._shared():
            if any(i.name == name for i in await self.images_in(place)):
                raise Conflict(
                    f"image {name!r} is in storage domain {place.domain}, which host "
                    f"{host.name!r} (VM {vm!r}'s host) does not reach "
                    f"(`corral storage-domain show {place.domain}` says why)"
                )
        close = did_you_mean(
            name, {i.name for i in await self.list_images(host.name) if i.kind is kind}
        )
        raise NotFound(
            f"no image named {name!r} on host {host.name!r} (VM {vm!r}'s host): "
            + (close or "`corral image list` shows the library")
        )

    @asynccontextmanager
    async def inserting(self, host: LibvirtHost, name: str, vm: str) -> AsyncIterator[ImageInfo]:
        """The ISO image ``name`` for VM ``vm`` on ``host``, held while it is inserted."""
        image = await self.iso_for(host, name, vm)
        key = host.name if image.host is not None else f"domain:{image.domain}"
        async with self.hold(key, name, f"insertion into VM {vm}"):
            yield await self.iso_for(host, name, vm)

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
        domain: str | None = None,
    ) -> ImageUploaded:
        """Receive an image of ``total`` bytes from ``chunks`` as a task, into ``domain``
        (default local: ``host_name``'s pool) through ``host_name``; see ``upload.py``."""
        place = await self.place(domain, host_name)
        async with self.hold(place.key, name, "an upload"):
            upload = Upload(place, name, kind, total, principal, self._tasks, self._audit,
                            self._room)  # fmt: skip
            async with upload.check() as promise:
                relabel = functools.partial(self._relabel, place.key, name)
                task = await upload.run(chunks, relabel, promise)
        image = next((i for i in await self.images_in(place) if i.name == name), None)
        if image is None:
            raise HostError(f"image {name!r} was uploaded but is gone from {place.where}")
        return ImageUploaded(image=image, task=task)

    async def delete(
        self,
        principal: Principal,
        name: str,
        host_name: str | None = None,
        domain: str | None = None,
    ) -> None:
        place, image = await self.locate(name, host_name, domain)
        where = place.where if place.shared else f"host {place.host.name!r}"
        async with self.hold(place.key, name, "deletion"):
            image = next((i for i in await self.images_in(place) if i.name == name), image)
            if image.used_by:
                vms = ", ".join(image.used_by)
                raise Conflict(
                    f"image {name!r} on {where} is used by VM(s) {vms}: eject it "
                    "(`corral vm cdrom VM --eject`) or delete those VMs first"
                )
            templates = (
                await self.templates_using(place.host.name, image_volume(image.kind, name))
                if self.templates_using is not None and not place.shared
                else []
            )
            if templates:
                raise Conflict(
                    f"image {name!r} on {where} is the base of template(s) "
                    f"{', '.join(templates)}: delete them first (`corral template delete`)"
                )
            clones = _clones_on(image, await place.list_volumes())
            if clones:
                raise Conflict(
                    f"image {name!r} on {where} is the base of the linked clone "
                    f"volume(s) {', '.join(clones)}: delete them first"
                )
            await place.delete_volume(image_volume(image.kind, name))


def _usable(place: ImagePlace, kind: ImageKind) -> bool:
    """Whether a VM on a host reaching ``place`` can use its images of ``kind`` for what
    ``holders`` asks about. A shared domain's disk images are bases of disks on that domain
    only (the clone is made beside its base; ``image_needs`` leaves those disks out)."""
    return kind is not ImageKind.DISK and kind_refusal(place.domain, place.kind, kind) is None


def _local_driver() -> StorageDriver:
    """The local domain's driver (imported at call time: see the imports above)."""
    from corral.services.storage.domains import LOCAL_CONFIG
    from corral.services.storage.driver import DriverContext
    from corral.services.storage.drivers.local import LocalDriver

    return LocalDriver(LOCAL_CONFIG, DriverContext())
