"""Which hosts hold the images a new VM names, so that placement chooses among them only.

A VM uses the images of its own host (its CD-ROM's ISO, its kernel and initrd, the base of a
linked clone). ``vm create`` without a host therefore asks first which connected hosts lack
which of them; when no host has them all, placement cannot help and the request is refused at
once: an image on no host at all (404), or images spread over several hosts (409, saying
where each one is).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from corral.errors import Conflict, InvalidRequest, NotFound
from corral.model.image import ImageKind
from corral.model.storage_domain import LOCAL_DOMAIN
from corral.model.vm import VmSpec
from corral.services.images._names import image_volume
from corral.virt import SERIAL_LOG_SUFFIX

UPLOAD = "`corral image upload FILE --host HOST`"


@dataclass(frozen=True)
class ImageNeed:
    """One image a new VM names: ``label`` in words, ``name`` and ``kind`` as the library
    knows it, and the pool volumes any one of which means that a host has it."""

    label: str
    name: str
    kind: ImageKind
    volumes: tuple[str, ...]


def image_needs(spec: VmSpec) -> list[ImageNeed]:
    """The library images (not host paths) ``spec`` names, each once."""
    needs = []
    if spec.cdrom is not None and not spec.cdrom.startswith("/"):
        iso = ImageKind.ISO
        volume = image_volume(iso, spec.cdrom)
        needs.append(ImageNeed(f"ISO image {spec.cdrom!r}", spec.cdrom, iso, (volume,)))
    for value in (spec.boot.kernel, spec.boot.initrd):
        if value is not None and not value.startswith("/"):
            kernel = ImageKind.KERNEL
            volume = image_volume(kernel, value)
            needs.append(ImageNeed(f"kernel image {value!r}", value, kernel, (volume,)))
    for disk in spec.disks:
        # A disk on a storage domain stands on a base in that domain: placement keeps to the
        # hosts reaching the domain, and creation looks the base up there.
        if disk.base_image is not None and disk.domain == LOCAL_DOMAIN:
            # A pool volume of that name, as before the library existed, or a disk image.
            base, kind = disk.base_image, ImageKind.DISK
            if base.endswith(SERIAL_LOG_SUFFIX):
                # Logs are in every pool but in no host's image list: say what it is, not
                # that no host has it.
                raise InvalidRequest(f"base image {base!r} is a serial log, not a disk image")
            volumes = (base, image_volume(kind, base))
            needs.append(ImageNeed(f"base image {base!r}", base, kind, volumes))
    return list(dict.fromkeys(needs))


def _hosts(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def lacking(
    vm: str,
    needs: Sequence[ImageNeed],
    held: Mapping[str, set[ImageNeed]],
    close: Mapping[ImageNeed, str] | None = None,
) -> dict[str, str]:
    """Per connected host (``held``: what each one has), the images it lacks in words
    ("ISO image 'debian.iso'"), for the hosts lacking any; NotFound or Conflict when no host
    has every image. ``close``: a "did you mean" for an image no host has, if any."""
    where = {need: [host for host, got in held.items() if need in got] for need in needs}
    for need, hosts in where.items():
        if not hosts:
            upload = f"`corral image upload FILE --kind {need.kind.value} --host HOST`"
            guess = (close or {}).get(need)
            raise NotFound(
                f"no {need.label} on any connected host (VM {vm!r} names it): "
                + (f"{guess} Otherwise upload" if guess else "upload")
                + f" it first ({upload}); `corral image list` shows the library"
            )
    if not any(len(got) == len(needs) for got in held.values()):
        spread = "; ".join(f"{n.label} is only on {_hosts(hosts)}" for n, hosts in where.items())
        raise Conflict(
            f"no host has every image VM {vm!r} names ({spread}): upload them to one host "
            f"({UPLOAD})"
        )
    return {
        host: _hosts([n.label for n in needs if n not in got])
        for host, got in held.items()
        if len(got) < len(needs)
    }
