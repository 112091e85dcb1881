"""What an image is, from its first bytes: qcow2 (virtual size, backing file), ISO 9660 or raw.

Pure functions on bytes (no libvirt, no I/O): imports read the head of a file, uploads buffer the
head of a request body, and both decide here before any volume exists.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from corral.errors import InvalidRequest

QCOW2_MAGIC = b"QFI\xfb"
_QCOW2_HEADER = struct.Struct(">4sIQI I Q")  # magic, version, backing offset, size, bits, size
#: ISO 9660 (and UDF's volume recognition sequence) start at sector 16 of 2048 bytes: a type
#: byte, then ``CD001`` (ISO 9660) or ``BEA01`` (UDF), so bytes 32769-32773.
ISO_MAGIC_OFFSET = 16 * 2048 + 1
_ISO_MAGICS = (b"CD001", b"BEA01")
#: How many bytes of an image ``probe_header`` needs to decide (when the image has that many).
HEAD_BYTES = ISO_MAGIC_OFFSET + 5
#: Formats QEMU would read as raw garbage: (offset, magic, name). VDI's signature 0xbeda107f
#: follows its text banner; a VHD's footer is at its end, but dynamic VHDs copy it to the start.
_FOREIGN = (
    (0, b"KDMV", "VMDK"),
    (64, b"\x7f\x10\xda\xbe", "VDI"),
    (0, b"vhdxfile", "VHDX"),
    (0, b"conectix", "VHD"),
)


@dataclass(frozen=True)
class ImageProbe:
    """``format`` is ``qcow2`` or ``raw``; ``capacity`` the disk size a guest sees; ``iso`` says
    the bytes carry an ISO 9660 or UDF file system (a CD/DVD image)."""

    format: str
    capacity: int
    iso: bool


def probe_header(head: bytes, size: int, label: str) -> ImageProbe:
    """Probe an image of ``size`` bytes from its first bytes (``HEAD_BYTES``, or all of it when
    shorter). A qcow2 image naming a backing file is refused: on the host it could point at any
    file; so are VMDK/VDI/VHD(X) images, which QEMU would pass to the guest as raw bytes."""
    if head.startswith(QCOW2_MAGIC):
        return ImageProbe("qcow2", _qcow2_size(head, label), iso=False)
    for offset, magic, kind in _FOREIGN:
        if head[offset : offset + len(magic)] == magic:
            raise InvalidRequest(
                f"{label} is a {kind} image, which Corral does not store: convert it first "
                f"(qemu-img convert -O qcow2 {label} {label}.qcow2)"
            )
    magic = head[ISO_MAGIC_OFFSET : ISO_MAGIC_OFFSET + 5]
    return ImageProbe("raw", size, iso=magic in _ISO_MAGICS)


def _qcow2_size(head: bytes, label: str) -> int:
    if len(head) < _QCOW2_HEADER.size:
        raise InvalidRequest(f"{label} starts like a qcow2 image but its header is truncated")
    _magic, _version, backing_offset, _bsize, _bits, size = _QCOW2_HEADER.unpack_from(head)
    if backing_offset:
        raise InvalidRequest(
            f"{label} is a qcow2 image with a backing file; flatten it first "
            f"(qemu-img convert -O qcow2 {label} flat.qcow2) and use that"
        )
    return int(size)
