"""Byte streams through libvirt: volume upload/download and screenshots (worker threads).

Everything here uses blocking libvirt streams, so it works the same for local and remote hosts.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

import libvirt
from PIL import Image

from corral.errors import Cancelled, InvalidRequest
from corral.virt import _storage
from corral.virt._probe import HEAD_BYTES, probe_header
from corral.virt._xmlgen import volume_xml
from corral.virt.types import VolumeRef

CHUNK = 1024 * 1024


def probe_image(source: Path) -> tuple[str, int]:
    """(format, virtual size) of an image file; raw when it is not qcow2 (see ``probe_header``)."""
    with source.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    probe = probe_header(head, source.stat().st_size, str(source))
    return probe.format, probe.capacity


class VolumeUpload:
    """A new volume being filled through a libvirt stream (blocking calls: worker threads).

    :meth:`create` makes the volume and opens the stream for exactly ``total`` bytes; unless
    :meth:`finish` succeeds after all of them were sent, :meth:`abort` must follow, and it
    deletes the volume again: an upload leaves a whole volume or none.
    """

    def __init__(self, vol: libvirt.virStorageVol, stream: libvirt.virStream, total: int) -> None:
        self.vol = vol
        self.total = total
        self.done = 0
        self._stream = stream

    @classmethod
    def create(
        cls,
        conn: libvirt.virConnect,
        pool: libvirt.virStoragePool,
        name: str,
        fmt: str,
        capacity: int,
        total: int,
    ) -> VolumeUpload:
        """Conflict if ``name`` is taken, InsufficientResources if the pool lacks ``total``."""
        _storage.check_new(pool, name, total)
        vol = pool.createXML(volume_xml(name, capacity, fmt), 0)
        try:
            stream = conn.newStream(0)
            vol.upload(stream, 0, total, 0)
        except BaseException:
            with contextlib.suppress(libvirt.libvirtError):
                vol.delete(0)
            raise
        return cls(vol, stream, total)

    def send(self, data: bytes) -> None:
        if self.done + len(data) > self.total:
            raise InvalidRequest(
                f"volume {self.vol.name()}: more than the announced {self.total} bytes arrived"
            )
        view = memoryview(data)
        while view:
            sent = self._stream.send(bytes(view))
            view = view[sent:]
        self.done += len(data)

    def finish(self) -> VolumeRef:
        if self.done != self.total:
            raise InvalidRequest(
                f"volume {self.vol.name()}: {self.done} of {self.total} bytes arrived"
            )
        self._stream.finish()
        return _storage.volume_ref(self.vol)

    def abort(self) -> None:
        """Stop the stream and delete the volume; never raises for libvirt's sake."""
        with contextlib.suppress(libvirt.libvirtError):
            self._stream.abort()
        with contextlib.suppress(libvirt.libvirtError):
            self.vol.delete(0)


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
    job = VolumeUpload.create(conn, pool, name, fmt, capacity, total)
    try:
        with source.open("rb") as handle:
            progress(0, total)
            while chunk := handle.read(CHUNK):
                if cancelled():
                    raise Cancelled(f"import of {source} into volume {name} was cancelled")
                job.send(chunk)
                progress(job.done, total)
        return job.finish()
    except BaseException:
        job.abort()
        raise


def recv_all(stream: libvirt.virStream) -> bytes:
    buffer = io.BytesIO()
    while True:
        data = stream.recv(CHUNK)
        if not isinstance(data, bytes) or not data:
            break
        buffer.write(data)
    stream.finish()
    return buffer.getvalue()


def download_tail(
    conn: libvirt.virConnect,
    pool: libvirt.virStoragePool,
    name: str,
    tail_bytes: int | None,
    tail_lines: int | None = None,
) -> bytes:
    """The end of volume ``name``: its last ``tail_lines`` lines, else its last ``tail_bytes``
    (all when both are None); b"" if it does not exist."""
    vol = _storage.find(pool, name)
    if vol is None:
        return b""
    if tail_bytes is None and tail_lines is None:
        stream = conn.newStream(0)
        vol.download(stream, 0, 0, 0)  # length 0: to the end, whatever it is now
        return recv_all(stream)

    def read(offset: int, length: int) -> bytes:
        stream = conn.newStream(0)
        vol.download(stream, offset, length, 0)
        return recv_all(stream)

    size = int(vol.info()[1])
    if tail_lines is not None:
        return last_lines(read, size, tail_lines)
    assert tail_bytes is not None
    length = min(size, tail_bytes)
    return read(size - length, length) if length > 0 else b""


#: How far back ``last_lines`` looks for line ends before it gives up (a log without newlines).
TAIL_LINES_MAX_BYTES = 64 * 1024 * 1024
_TAIL_FIRST_READ = 64 * 1024


def last_lines(
    read: Callable[[int, int], bytes],
    size: int,
    lines: int,
    *,
    limit: int = TAIL_LINES_MAX_BYTES,
    first_read: int = _TAIL_FIRST_READ,
) -> bytes:
    """The last ``lines`` lines (ended by b"\\n"; the last one may be unfinished) of ``size``
    bytes that ``read(offset, length)`` returns. Reads backwards in growing pieces, so a short
    tail of a long log costs a short read; at most ``limit`` bytes."""
    want = first_read
    while True:
        length = min(size, want, limit)
        data = read(size - length, length) if length > 0 else b""
        # A final line end closes the last line; it does not start another one.
        end = len(data) - 1 if data.endswith(b"\n") else len(data)
        for _ in range(lines):
            end = data.rfind(b"\n", 0, end)
            if end < 0:
                break
        if end >= 0:
            return data[end + 1 :]
        if length in (size, limit):
            return data
        want *= 4


def screenshot_png(conn: libvirt.virConnect, dom: libvirt.virDomain) -> bytes:
    stream = conn.newStream(0)
    mime = dom.screenshot(stream, 0, 0)
    data = recv_all(stream)
    if mime == "image/png" or data.startswith(b"\x89PNG"):
        return data
    # QEMU before 7.1 and some drivers hand out PPM.
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, format="PNG")
    return out.getvalue()
