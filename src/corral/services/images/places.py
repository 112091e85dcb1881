"""Where library images are kept: the ``local`` domain of one host (its own pool) or a shared
storage domain (``shared-dir``, ``nfs``), reached through one host that reaches it.

An image in a shared domain is one image for every host reaching the domain: it is listed
once, with its domain and no host. ``iscsi`` domains keep no images (their driver says why).
Direct kernel boot reads the kernel and initrd as files on the VM's host (libvirt's
``<kernel>``, QEMU's ``-kernel``, take no ``nfs://`` URL), so kernel images are not kept in
``nfs`` domains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from corral.errors import Conflict
from corral.model.image import ImageKind
from corral.model.storage_domain import (
    IMAGE_KIND_REFUSALS,
    LOCAL_DOMAIN,
    StorageDomainKind,
    VolumeOperation,
)
from corral.virt import LibvirtHost, VolumeRef

if TYPE_CHECKING:  # corral.services.storage imports the image library (volume listings)
    from corral.services.storage.driver import ImageWriter, StorageDriver


def kind_refusal(domain: str, kind: StorageDomainKind, image: ImageKind) -> str | None:
    why = IMAGE_KIND_REFUSALS.get((kind, image))
    if why is None:
        return None
    return f"storage domain {domain} ({kind.value}) keeps no {image.value} images: {why}"


def upload_refusal(domain: str, kind: StorageDomainKind, driver: StorageDriver) -> str | None:
    """Why ``driver``'s domain keeps no images (its kind's own reason), or None."""
    for support in driver.operations():
        if support.operation is VolumeOperation.UPLOAD and not support.supported:
            return f"storage domain {domain} ({kind.value}): {support.reason}"
    return None


@dataclass(frozen=True)
class ImagePlace:
    """One place images are kept, and the host Corral reaches it through."""

    domain: str
    kind: StorageDomainKind
    host: LibvirtHost
    driver: StorageDriver

    @property
    def shared(self) -> bool:
        return self.domain != LOCAL_DOMAIN

    @property
    def key(self) -> str:
        """Names the place among all others (host names hold no ``:``)."""
        return f"domain:{self.domain}" if self.shared else self.host.name

    @property
    def where(self) -> str:
        return f"storage domain {self.domain!r}" if self.shared else f"host {self.host.name!r}"

    def target(self, image: str) -> str:
        """An upload's task and audit target: ``HOST/NAME`` or ``DOMAIN/NAME``."""
        return f"{self.domain if self.shared else self.host.name}/{image}"

    async def list_volumes(self) -> list[VolumeRef]:
        return await self.driver.list_volumes(self.host)

    async def free_bytes(self) -> int:
        return await self.driver.free_bytes(self.host)

    async def volume_exists(self, name: str) -> bool:
        if not self.shared:
            return await self.host.storage.volume_exists(name)
        return any(v.name == name for v in await self.list_volumes())

    async def open_upload(self, name: str, fmt: str, capacity: int, total: int) -> ImageWriter:
        from corral.services.storage.driver import UploadTarget  # at call time: see above

        driver = self.driver
        if not isinstance(driver, UploadTarget):
            raise Conflict(f"{self.where} takes no uploads")
        return await driver.open_upload(self.host, name, fmt, capacity, total)

    async def delete_volume(self, name: str) -> None:
        await self.driver.delete_volume(self.host, name)
