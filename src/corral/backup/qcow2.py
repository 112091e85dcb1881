"""Reading what a backup job wrote into a qcow2 file, through nothing but a function that
returns bytes of the file (libvirt's volume download, so it works for every host alike).

A push-mode backup job writes a fresh qcow2 without compression or encryption: the full one
every cluster the disk holds, an incremental one only the clusters that changed since its
checkpoint (libvirt gives it the disk as backing file, which is never read here: only what
this file holds counts). A cluster the job wrote is *present*: with data (the L2
entry's offset) or as zeros (the entry's zero flag, qcow2 version 3); a cluster it did not
write is absent (unchanged, or zeros in a full backup). See QEMU's docs/interop/qcow2.txt.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from corral.errors import CorralError

Fetch = Callable[[int, int], bytes]
MAGIC = b"QFI\xfb"
_OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00
_COMPRESSED = 1 << 62
_ZERO = 1
#: Fetch at most this much at once when reading runs of clusters.
RUN_MAX = 4 * 1024 * 1024


@dataclass(frozen=True)
class Extent:
    """``length`` guest bytes at ``offset``: at ``file_offset`` in the file, or zeros (None)."""

    offset: int
    length: int
    file_offset: int | None


class Qcow2Image:
    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        header = fetch(0, 104)
        if len(header) < 72 or header[:4] != MAGIC:
            raise CorralError("the backup file is not a qcow2 image")
        (version,) = struct.unpack(">I", header[4:8])
        cluster_bits = struct.unpack(">I", header[20:24])[0]
        (self.size,) = struct.unpack(">Q", header[24:32])
        crypt, l1_size, l1_offset = struct.unpack(">IIQ", header[32:48])
        if crypt:
            raise CorralError("the backup file is encrypted: not one a backup job writes")
        self.version = version
        self.cluster_size = 1 << cluster_bits
        self._l2_entries = self.cluster_size // 8
        l1 = fetch(l1_offset, l1_size * 8)
        self._l1 = struct.unpack(f">{l1_size}Q", l1)

    def extents(self) -> list[Extent]:
        """The present clusters, merged into runs (guest-contiguous and, for data, file-
        contiguous too), in guest order."""
        found: list[Extent] = []
        cluster = self.cluster_size
        for l1_index, l1_entry in enumerate(self._l1):
            table = l1_entry & _OFFSET_MASK
            if not table:
                continue
            raw = self._fetch(table, self.cluster_size)
            entries = struct.unpack(f">{self._l2_entries}Q", raw)
            for l2_index, entry in enumerate(entries):
                if not entry:
                    continue
                if entry & _COMPRESSED:
                    raise CorralError("the backup file holds compressed clusters")
                offset = (l1_index * self._l2_entries + l2_index) * cluster
                if offset >= self.size:
                    break
                length = min(cluster, self.size - offset)
                at = None if entry & _ZERO else (entry & _OFFSET_MASK) or None
                _append(found, Extent(offset, length, at))
        return found

    def read(self, extents: list[Extent], offset: int, length: int) -> bytes:
        """``length`` guest bytes at ``offset``; they must lie within present ``extents``
        (what changed), which is all a backup reads."""
        out = bytearray()
        end = offset + length
        for extent in extents:
            low, high = max(offset, extent.offset), min(end, extent.offset + extent.length)
            if low >= high:
                continue
            if low != offset + len(out):
                raise CorralError(f"guest bytes {offset + len(out)}-{low} are not in the file")
            if extent.file_offset is None:
                out += bytes(high - low)
                continue
            start = extent.file_offset + (low - extent.offset)
            while low < high:
                step = min(RUN_MAX, high - low)
                got = self._fetch(start, step)
                if len(got) != step:
                    raise CorralError("the backup file is shorter than its own tables say")
                out += got
                low, start = low + step, start + step
        if len(out) != length:
            raise CorralError(f"guest bytes up to {end} are not in the file")
        return bytes(out)


def _append(found: list[Extent], extent: Extent) -> None:
    if found:
        last = found[-1]
        joins = last.offset + last.length == extent.offset
        if joins and last.file_offset is None and extent.file_offset is None:
            found[-1] = Extent(last.offset, last.length + extent.length, None)
            return
        if (
            joins
            and last.file_offset is not None
            and extent.file_offset == last.file_offset + last.length
        ):
            found[-1] = Extent(last.offset, last.length + extent.length, last.file_offset)
            return
    found.append(extent)
