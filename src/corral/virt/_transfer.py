"""Byte streams through libvirt: volume upload/download and screenshots (worker threads).

Everything here uses blocking libvirt streams, so it works the same for local and remote hosts.
"""

from __future__ import annotations

import contextlib
import io
import struct
from collections.abc import Callable
from pathlib import Path

import libvirt
from PIL import Image

from corral.errors import Cancelled, InvalidRequest
from corral.virt import _storage
from corral.virt._xmlgen import volume_xml
from corral.virt.types import VolumeRef

CHUNK = 1024 * 1024
_QCOW2_HEADER = struct.Struct(">4sIQI I Q")  # magic, version, backing offset, size, bits, size


def probe_image(source: Path) -> tuple[str, int]:
    """(format, virtual size) from the file's header; raw when it is not qcow2.

    A qcow2 image naming a backing file is refused: on the host it could point at any file.
    """
    with source.open("rb") as handle:
        header = handle.read(_QCOW2_HEADER.size)
    if not header.startswith(_storage.QCOW2_MAGIC):
        return "raw", source.stat().st_size
    if len(header) < _QCOW2_HEADER.size:
        raise InvalidRequest(f"{source} starts like a qcow2 image but its header is truncated")
    _magic, _version, backing_offset, _bsize, _bits, size = _QCOW2_HEADER.unpack(header)
    if backing_offset:
        raise InvalidRequest(
            f"{source} is a qcow2 image with a backing file; flatten it first "
            f"(qemu-img convert -O qcow2 {source} flat.qcow2) and import that"
        )
    return "qcow2", int(size)


def upload(
    conn: libvirt.virConnect,
    pool: libvirt.virStoragePool,
    name: str,
    source: Path,
    progress: Callable[[int, int], None],
    cancelled: Callable[[], bool],
) -> VolumeRef:
    """Create volume ``name`` and stream ``source`` into it; delete it again on any failure."""
    fmt, capacity = probe_image(source)
    total = source.stat().st_size
    _storage.check_new(pool, name, total)
    vol = pool.createXML(volume_xml(name, capacity, fmt), 0)
    try:
        _send_file(conn, vol, source, total, progress, cancelled)
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            vol.delete(0)
        raise
    return _storage.volume_ref(vol)


def _send_file(
    conn: libvirt.virConnect,
    vol: libvirt.virStorageVol,
    source: Path,
    total: int,
    progress: Callable[[int, int], None],
    cancelled: Callable[[], bool],
) -> None:
    stream = conn.newStream(0)
    vol.upload(stream, 0, total, 0)
    done = 0
    try:
        with source.open("rb") as handle:
            progress(0, total)
            while chunk := handle.read(CHUNK):
                if cancelled():
                    raise Cancelled(f"import of {source} into volume {vol.name()} was cancelled")
                view = memoryview(chunk)
                while view:
                    sent = stream.send(bytes(view))
                    view = view[sent:]
                done += len(chunk)
                progress(done, total)
        stream.finish()
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        raise


def _recv_all(stream: libvirt.virStream) -> bytes:
    buffer = io.BytesIO()
    while True:
        data = stream.recv(CHUNK)
        if not isinstance(data, bytes) or not data:
            break
        buffer.write(data)
    stream.finish()
    return buffer.getvalue()


def download_tail(
    conn: libvirt.virConnect, pool: libvirt.virStoragePool, name: str, tail_bytes: int | None
) -> bytes:
    """The last ``tail_bytes`` (all when None) of volume ``name``; b"" if it does not exist."""
    vol = _storage.find(pool, name)
    if vol is None:
        return b""
    stream = conn.newStream(0)
    if tail_bytes is None:
        vol.download(stream, 0, 0, 0)  # length 0: to the end, whatever it is now
        return _recv_all(stream)
    size = int(vol.info()[1])
    offset = max(0, size - tail_bytes)
    if size - offset <= 0:
        stream.abort()
        return b""
    vol.download(stream, offset, size - offset, 0)
    return _recv_all(stream)


def screenshot_png(conn: libvirt.virConnect, dom: libvirt.virDomain) -> bytes:
    stream = conn.newStream(0)
    mime = dom.screenshot(stream, 0, 0)
    data = _recv_all(stream)
    if mime == "image/png" or data.startswith(b"\x89PNG"):
        return data
    # QEMU before 7.1 and some drivers hand out PPM.
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, format="PNG")
    return out.getvalue()
