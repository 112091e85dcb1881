"""The qcow2 reader against QEMU's own tools: the clusters it finds present are those
``qemu-img map`` reports present, and the bytes it reads are those ``qemu-img convert`` gives."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from corral.backup.qcow2 import Qcow2Image
from corral.errors import CorralError

MIB = 1024 * 1024


def _image(path: Path, *commands: str) -> Qcow2Image:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    args = [a for c in commands for a in ("-c", c)]
    subprocess.run(["qemu-io", *args, str(path)], check=True, capture_output=True)
    handle = path.open("rb")

    def fetch(offset: int, length: int) -> bytes:
        handle.seek(offset)
        return handle.read(length)

    return Qcow2Image(fetch)


def test_present_clusters_and_their_bytes_are_qemus(tmp_path: Path) -> None:
    path = tmp_path / "t.qcow2"
    image = _image(path, "write -P 0xab 1M 192k", "write -P 0xcd 5M 64k", "write -z 3M 64k",
                   "write -P 0x11 15M 1M")  # fmt: skip
    command = ["qemu-img", "map", "--output=json", str(path)]
    mapped = json.loads(subprocess.run(command, capture_output=True, check=True).stdout)
    present = [m for m in mapped if m["present"]]
    extents = image.extents()
    assert [(e.offset, e.length) for e in extents] == [(m["start"], m["length"]) for m in present]
    assert [e.file_offset is None for e in extents] == [not m["data"] for m in present]

    raw = tmp_path / "t.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(path), str(raw)], check=True)
    guest = raw.read_bytes()
    for extent in extents:
        assert (
            image.read(extents, extent.offset, extent.length)
            == guest[extent.offset : extent.offset + extent.length]
        )
    # Bytes outside what the file holds are not made up.
    with pytest.raises(CorralError, match="not in the file"):
        image.read(extents, 0, MIB)


def test_a_file_that_is_not_qcow2_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "raw"
    path.write_bytes(bytes(4096))
    with pytest.raises(CorralError, match="not a qcow2"):
        Qcow2Image(lambda offset, length: path.read_bytes()[offset : offset + length])
