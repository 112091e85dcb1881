"""Library images among the pool's volumes, and the kind an upload turns out to be."""

from __future__ import annotations

import pytest

from corral.errors import InvalidRequest
from corral.model.image import ImageKind
from corral.services.images import image_volume, is_image_volume, parse_image_volume
from corral.services.images.upload import decide_kind
from corral.virt import ImageProbe

ISO = ImageProbe("raw", 100, iso=True)
RAW = ImageProbe("raw", 100, iso=False)
QCOW2 = ImageProbe("qcow2", 100, iso=False)


def test_image_volumes_round_trip_and_nothing_else_is_one() -> None:
    for kind in ImageKind:
        assert parse_image_volume(image_volume(kind, "deb.iso")) == (kind, "deb.iso")
    # VM disks, clone overlays, serial logs and hand-made volumes start with a letter or digit.
    for other in ("web1-root.qcow2", "web1-root.a1b2c3.qcow2", "web1.serial.log", "debian12",
                  "_iso.", "_other.x", "iso.x"):  # fmt: skip
        assert not is_image_volume(other), other


@pytest.mark.parametrize(
    ("asked", "probe", "kind"),
    [(None, ISO, ImageKind.ISO), (None, RAW, ImageKind.DISK), (None, QCOW2, ImageKind.DISK),
     (ImageKind.ISO, ISO, ImageKind.ISO), (ImageKind.DISK, RAW, ImageKind.DISK),
     (ImageKind.KERNEL, RAW, ImageKind.KERNEL)],
)  # fmt: skip
def test_the_kind_is_what_the_bytes_are(
    asked: ImageKind | None, probe: ImageProbe, kind: ImageKind
) -> None:
    assert decide_kind(asked, probe, "x") is kind


@pytest.mark.parametrize(
    ("asked", "probe", "says"),
    [
        (ImageKind.ISO, RAW, "x is no ISO 9660 or UDF image"),
        (ImageKind.ISO, QCOW2, "x is a qcow2 disk image"),
        (ImageKind.DISK, ISO, "upload it with kind iso"),
        (ImageKind.KERNEL, QCOW2, "x is a qcow2 disk image, but kind kernel was asked"),
        (ImageKind.KERNEL, ISO, "x is an ISO 9660 image, but kind kernel was asked"),
    ],
)
def test_a_kind_the_bytes_are_not_is_refused(
    asked: ImageKind, probe: ImageProbe, says: str
) -> None:
    with pytest.raises(InvalidRequest, match=says):
        decide_kind(asked, probe, "x")
