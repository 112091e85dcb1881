"""How library images are told apart from the other volumes of Corral's pool.

An image named ``debian.iso`` of kind ``iso`` is the volume ``_iso.debian.iso``; a disk image
``base12`` is ``_disk.base12``; a kernel ``vmlinuz`` is ``_kernel.vmlinuz``. Names of VMs (hence
``VM-DISK.qcow2`` disks and their clone overlays) and serial logs (``VM.serial.log``) start with
a letter or digit, so no such volume can be taken for an image, nor an image for one; the prefix
also carries the kind.
"""

from __future__ import annotations

from corral.model.image import ImageKind

_PREFIX = {ImageKind.ISO: "_iso.", ImageKind.DISK: "_disk.", ImageKind.KERNEL: "_kernel."}


def image_volume(kind: ImageKind, name: str) -> str:
    return _PREFIX[kind] + name


def parse_image_volume(volume: str) -> tuple[ImageKind, str] | None:
    """(kind, image name) of an image's volume; None for any other volume."""
    for kind, prefix in _PREFIX.items():
        if volume.startswith(prefix) and len(volume) > len(prefix):
            return kind, volume[len(prefix) :]
    return None


def is_image_volume(volume: str) -> bool:
    return parse_image_volume(volume) is not None
