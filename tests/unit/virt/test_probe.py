"""What an image is from its first bytes: ISO 9660/UDF, qcow2 (size, backing file), raw."""

from __future__ import annotations

import struct

import pytest

from corral.errors import InvalidRequest
from corral.virt import HEAD_BYTES, ImageProbe, probe_header


def _qcow2(version: int = 3, backing: int = 0, size: int = 2**30) -> bytes:
    return struct.pack(">4sIQI I Q", b"QFI\xfb", version, backing, 0, 16, size) + bytes(64)


def _iso(magic: bytes = b"CD001") -> bytes:
    head = bytearray(HEAD_BYTES)
    head[32768:32774] = b"\x01" + magic
    return bytes(head)


VDI_HEAD = b"<<< Oracle VM VirtualBox Disk Image >>>\n".ljust(64, b"\0") + b"\x7f\x10\xda\xbe"


def test_head_bytes_reach_past_the_iso_signature() -> None:
    assert HEAD_BYTES == 32774


@pytest.mark.parametrize(
    ("head", "size", "probe"),
    [
        (_iso(), 10**6, ImageProbe("raw", 10**6, iso=True)),
        (_iso(b"BEA01"), 10**6, ImageProbe("raw", 10**6, iso=True)),  # UDF
        (_iso(b"CD002"), 10**6, ImageProbe("raw", 10**6, iso=False)),
        (_qcow2(), 5000, ImageProbe("qcow2", 2**30, iso=False)),
        (_qcow2(version=2, size=7), 5000, ImageProbe("qcow2", 7, iso=False)),
        (b"\x00" * 512, 512, ImageProbe("raw", 512, iso=False)),
        (b"", 0, ImageProbe("raw", 0, iso=False)),
        (b"<<< just text >>>" + bytes(100), 117, ImageProbe("raw", 117, iso=False)),
    ],
)
def test_probe(head: bytes, size: int, probe: ImageProbe) -> None:
    assert probe_header(head, size, "img") == probe


@pytest.mark.parametrize(
    ("head", "says"),
    [
        (_qcow2(backing=4096), "backing file; flatten it first (qemu-img convert"),
        (_qcow2()[:20], "header is truncated"),
        (b"KDMV" + bytes(100), "is a VMDK image"),
        (VDI_HEAD, "is a VDI image"),
        (b"vhdxfile" + bytes(100), "is a VHDX image"),
    ],
)
def test_refused(head: bytes, says: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^img ") as caught:
        probe_header(head, 10**6, "img")
    assert says in caught.value.message
