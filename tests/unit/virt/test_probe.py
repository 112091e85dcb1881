"""What an image is from its first bytes: ISO 9660/UDF, qcow2 (size, backing file), raw."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from corral.errors import InvalidRequest
from corral.virt import HEAD_BYTES, ImageProbe, probe_header


def _qcow2(
    version: int = 3,
    backing: int = 0,
    size: int = 2**30,
    incompatible: int = 0,
    crypt: int = 0,
    extensions: bytes = b"",
) -> bytes:
    head = struct.pack(">4sIQI I Q I", b"QFI\xfb", version, backing, 0, 16, size, crypt)
    head += bytes(72 - len(head))
    if version == 3:
        head += struct.pack(">QQQII", incompatible, 0, 0, 4, 104)
    return head + extensions + bytes(8) + bytes(64)


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
        # Dirty refcounts, zstd compression, extended L2 entries: read the same file.
        (_qcow2(incompatible=0b11001), 5000, ImageProbe("qcow2", 2**30, iso=False)),
        # An extension Corral does not know (the feature name table) is skipped over.
        (
            _qcow2(extensions=struct.pack(">II", 0x6803F857, 48) + bytes(48)),
            5000,
            ImageProbe("qcow2", 2**30, iso=False),
        ),
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
        (_qcow2()[:90], "header is truncated"),
        (_qcow2(incompatible=1 << 2), "external data file, which could be any file"),
        (_qcow2(incompatible=1 << 1), "marked corrupt; repair it first"),
        (_qcow2(incompatible=1 << 9), "features Corral does not know (bits 0x200)"),
        (_qcow2(version=4), "version 4, which Corral does not know"),
        (_qcow2(crypt=2), "encrypted qcow2 image"),
        # The data file's name without the feature bit: refused all the same.
        (
            _qcow2(extensions=struct.pack(">II", 0x44415441, 11) + b"/etc/shadow\0" + bytes(4)),
            "external data file",
        ),
        (b"KDMV" + bytes(100), "is a VMDK image"),
        (VDI_HEAD, "is a VDI image"),
        (b"vhdxfile" + bytes(100), "is a VHDX image"),
    ],
)
def test_refused(head: bytes, says: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^img ") as caught:
        probe_header(head, 10**6, "img")
    assert says in caught.value.message


def _made_by_qemu_img(tmp_path: Path, *options: str) -> bytes:
    image = tmp_path / "made.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *options, str(image), "1M"],
                   check=True)  # fmt: skip
    return image.read_bytes()[:HEAD_BYTES]


def test_qemu_imgs_own_images(tmp_path: Path) -> None:
    """What qemu-img writes, not only what the tests build: a plain image passes, one with an
    external data file (the host file the guest would read) is refused."""
    assert probe_header(_made_by_qemu_img(tmp_path), 10**6, "img").format == "qcow2"
    target = tmp_path / "victim"
    target.write_bytes(b"secret")
    head = _made_by_qemu_img(tmp_path, "-o", f"data_file={target}")
    with pytest.raises(InvalidRequest, match="external data file"):
        probe_header(head, 10**6, "img")
    head = _made_by_qemu_img(tmp_path, "-o", f"data_file={target},data_file_raw=on")
    with pytest.raises(InvalidRequest, match="external data file"):
        probe_header(head, 10**6, "img")
