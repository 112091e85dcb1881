"""What an image is, from its first bytes: qcow2 (virtual size, backing file, features), ISO 9660
or raw.

Pure functions on bytes (no libvirt, no I/O): imports read the head of a file, uploads buffer the
head of a request body, and both decide here before any volume exists.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from corral.errors import InvalidRequest

QCOW2_MAGIC = b"QFI\xfb"
_QCOW2_HEADER = struct.Struct(">4sIQI I Q")  # magic, version, backing offset, size, bits, size
#: A version 2 header's length; version 3 adds the feature bits (72-95), refcount order and the
#: header's own length (100), where the header extensions start.
_QCOW2_V2_LENGTH = 72
_QCOW2_V3_LENGTH = 104
#: Incompatible feature bits (QEMU's docs/interop/qcow2.txt): dirty refcounts (0) is repaired
#: on open, corrupt (1) and external data file (2) are refused, compression type (3) and
#: extended L2 entries (4) change how clusters are read, not which file.
QCOW2_DIRTY = 1 << 0
QCOW2_CORRUPT = 1 << 1
QCOW2_DATA_FILE = 1 << 2
QCOW2_KNOWN_INCOMPATIBLE = QCOW2_DIRTY | QCOW2_CORRUPT | QCOW2_DATA_FILE | 1 << 3 | 1 << 4
_EXT_END = 0
_EXT_DATA_FILE = 0x44415441
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
    shorter). A qcow2 image naming a backing file or an external data file is refused: on the
    host either could point at any file; so are qcow2 images marked corrupt or with features
    Corral does not know (see ``check_qcow2``), and VMDK/VDI/VHD(X) images, which QEMU would pass
    to the guest as raw bytes."""
    if head.startswith(QCOW2_MAGIC):
        header = check_qcow2(head, label)
        if header.backing_offset:
            raise InvalidRequest(
                f"{label} is a qcow2 image with a backing file; flatten it first "
                f"(qemu-img convert -O qcow2 {label} flat.qcow2) and use that"
            )
        return ImageProbe("qcow2", header.size, iso=False)
    for offset, magic, kind in _FOREIGN:
        if head[offset : offset + len(magic)] == magic:
            raise InvalidRequest(
                f"{label} is a {kind} image, which Corral does not store: convert it first "
                f"(qemu-img convert -O qcow2 {label} {label}.qcow2)"
            )
    magic = head[ISO_MAGIC_OFFSET : ISO_MAGIC_OFFSET + 5]
    return ImageProbe("raw", size, iso=magic in _ISO_MAGICS)


@dataclass(frozen=True)
class Qcow2Header:
    size: int
    backing_offset: int


def check_qcow2(head: bytes, label: str) -> Qcow2Header:
    """The header of the qcow2 image starting ``head``, refused (InvalidRequest) when it has an
    external data file (the guest would read and write that host file), is marked corrupt, is
    encrypted, or has an incompatible feature or a version Corral does not know. A backing file
    is the caller's to judge (a base volume may stand on another volume of the pool)."""
    if len(head) < _QCOW2_V2_LENGTH:
        raise InvalidRequest(f"{label} starts like a qcow2 image but its header is truncated")
    _magic, version, backing_offset, _bsize, _bits, size = _QCOW2_HEADER.unpack_from(head)
    flatten = f"(qemu-img convert -O qcow2 {label} flat.qcow2) and use that"
    if version not in (2, 3):
        raise InvalidRequest(f"{label} is a qcow2 image of version {version}, which Corral "
                             f"does not know; convert it {flatten}")  # fmt: skip
    (crypt_method,) = struct.unpack_from(">I", head, 32)
    if crypt_method:
        raise InvalidRequest(f"{label} is an encrypted qcow2 image; decrypt it {flatten}")
    extensions_at = _QCOW2_V2_LENGTH
    if version == 3:
        if len(head) < _QCOW2_V3_LENGTH:
            raise InvalidRequest(f"{label} starts like a qcow2 image but its header is truncated")
        (incompatible,) = struct.unpack_from(">Q", head, 72)
        (length,) = struct.unpack_from(">I", head, 100)
        extensions_at = max(length, _QCOW2_V3_LENGTH)
        if incompatible & QCOW2_DATA_FILE:
            raise InvalidRequest(_data_file(label, flatten))
        if incompatible & QCOW2_CORRUPT:
            raise InvalidRequest(
                f"{label} is a qcow2 image marked corrupt; repair it first "
                f"(qemu-img check -r all {label})"
            )
        unknown = incompatible & ~QCOW2_KNOWN_INCOMPATIBLE
        if unknown:
            raise InvalidRequest(
                f"{label} is a qcow2 image with incompatible features Corral does not know "
                f"(bits {unknown:#x}); convert it {flatten}"
            )
    if _data_file_extension(head, extensions_at):
        raise InvalidRequest(_data_file(label, flatten))
    return Qcow2Header(size=int(size), backing_offset=int(backing_offset))


def _data_file(label: str, flatten: str) -> str:
    return (
        f"{label} is a qcow2 image with an external data file, which could be any file on the "
        f"host; convert it into a self-contained image {flatten}"
    )


def _data_file_extension(head: bytes, offset: int) -> bool:
    """True when the header extensions (as far as ``head`` holds them) name a data file: QEMU
    would not open it without the feature bit, but no image Corral takes carries one."""
    while offset + 8 <= len(head):
        kind, length = struct.unpack_from(">II", head, offset)
        if kind == _EXT_END:
            return False
        if kind == _EXT_DATA_FILE:
            return True
        offset += 8 + (length + 7) // 8 * 8
    return False
