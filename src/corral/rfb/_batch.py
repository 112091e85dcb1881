"""Deferred painting: tiles of many small rectangles applied in a few numpy calls.

QEMU sends dozens of tiny rectangles per update (a 16x10 rectangle per changed text cell group);
painting each with numpy would cost more in call overhead than in work. Hextile and ZRLE tiles
are therefore parsed in Python into flat lists here, and ``flush`` (at the end of the update,
before any direct paint, or when the batch is large) turns them into one scatter per kind.

Order: inside one rectangle tiles do not overlap and a Hextile background precedes its
subrectangles, so painting all fills first is exact. Only if two rectangles of the batch
overlap is the paint order restored by a stable sort on the rectangle's sequence number.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from ._errors import InvalidEncodingData, InvalidRectangle
from ._pixel import PixelFormat, U32Array

I64 = npt.NDArray[np.int64]
# Bounds of one batch: its memory, and the work of one flush (subrectangles count 256 pixels).
_MAX_RECTS = 256
_MAX_PIXELS = 1 << 20


class TileCache:
    """Decoded tiles by their encoded bytes, up to a total number of pixels."""

    def __init__(self, max_pixels: int = 1 << 20) -> None:
        self._tiles: dict[tuple[int, int, bytes], U32Array] = {}
        self._pixels = 0
        self._max = max_pixels

    def get(self, key: tuple[int, int, bytes]) -> U32Array | None:
        return self._tiles.get(key)

    def put(self, key: tuple[int, int, bytes], block: U32Array) -> None:
        if self._pixels + block.size > self._max:
            self._tiles.clear()
            self._pixels = 0
        self._tiles[key] = block
        self._pixels += block.size


def rect_pixels(xs: I64, ys: I64, ws: I64, hs: I64, width: int) -> tuple[I64, I64]:
    """Flat framebuffer indices of every pixel of the rectangles (row-major in each), and the
    index of the rectangle each pixel belongs to."""
    counts = ws * hs
    total = int(counts.sum())
    owner = np.repeat(np.arange(counts.size), counts)
    local = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    rw = ws[owner]
    dy = local // rw
    flat = (ys[owner] + dy) * width + xs[owner] + (local - dy * rw)
    return flat, owner


class PaintBatch:
    """Pending paint operations of one framebuffer (see the module docstring)."""

    def __init__(self, pf: PixelFormat) -> None:
        self.pf = pf
        self.pending = False
        self.zrle_expand: Callable[[PaintBatch], None] | None = None
        self.cache: TileCache | None = None
        self._clear()

    def _clear(self) -> None:
        self.pending = False
        self.rects: list[int] = []  # x, y, w, h per rectangle
        self.fills: list[int] = []  # rect, x, y, w, h, value
        self.sub_meta: list[int] = []  # rect, x, y, tile w, tile h, count, foreground value
        self.sub_xy = bytearray()  # 2 bytes per subrectangle (Hextile x|y, w-1|h-1)
        self.csub_meta: list[int] = []  # the same for coloured subrectangles (value unused)
        self.csub_data = bytearray()  # wire pixel + 2 bytes per coloured subrectangle
        self.raw_meta: list[int] = []  # rect, x, y, w, h, cpixel (0/1)
        self.raw_data = bytearray()
        self.raw_cdata = bytearray()
        self.packed_meta: list[int] = []  # rect, x, y, w, h, bits, palette offset, size
        self.packed = bytearray()
        self.palette: list[int] = []
        self.run_meta: list[int] = []  # rect, x, y, w, h, number of runs
        self.run_values: list[int] = []
        self.run_lengths: list[int] = []
        self.pixels = 0
        self.epoch = getattr(self, "epoch", 0) + 1
        self.block_meta: list[int] = []  # rect, x, y, w, h of ready RGBX blocks (tile cache)
        self.blocks: list[U32Array] = []
        self.to_cache: list[tuple[int, int, int, int, bytes]] = []  # x, y, w, h, tile bytes
        # ZRLE rectangles waiting for one decompression: (rect, x, y, w, h, compressed).
        self.zrle_queue: list[tuple[int, int, int, int, int, bytes]] = []
        self.zrle_bound = 0

    def add_rect(self, x: int, y: int, w: int, h: int) -> int:
        """Register a rectangle; returns its sequence number for the ops that paint it."""
        self.pending = True
        self.rects += (x, y, w, h)
        self.pixels += w * h
        return len(self.rects) // 4 - 1

    @property
    def full(self) -> bool:
        return self.pixels >= _MAX_PIXELS or len(self.rects) >= 4 * _MAX_RECTS

    # --- flushing ---------------------------------------------------------------------------
    def flush(self, pixels: U32Array, charge: Callable[[int], None]) -> None:
        """Apply everything to ``pixels``; ``charge(n)`` counts painted pixels first."""
        if not self.pending:
            return
        if self.zrle_queue and self.zrle_expand is not None:
            self.zrle_expand(self)
        width = pixels.shape[1]
        overlap = len(self.rects) > 4 and _overlapping(self.rects)
        # A few fills are cheaper as slices than vectorised (numpy calls cost ~µs each).
        fills = self.fills if not overlap and len(self.fills) <= 6 * 128 else []
        blocks = self.blocks if not overlap and len(self.blocks) <= 128 else []
        block_meta = self.block_meta
        parts = [p for p in (None if fills else self._fills(width), self._subrects(width),
                             self._raw(width), self._packed(width), self._runs(width),
                             None if blocks else self._blocks(width))
                 if p is not None]  # fmt: skip
        to_cache = self.to_cache
        self._clear()
        total = sum(int(p[1].size) for p in parts)
        total += sum(fills[i + 3] * fills[i + 4] for i in range(0, len(fills), 6))
        total += sum(int(b.size) for b in blocks)
        charge(total)
        for i in range(0, len(fills), 6):
            _, x, y, w, h, value = fills[i : i + 6]
            pixels[y : y + h, x : x + w] = value
        for i, block in enumerate(blocks):
            _, x, y, w, h = block_meta[5 * i : 5 * i + 5]
            pixels[y : y + h, x : x + w] = block
        _scatter(pixels.reshape(-1), parts, overlap)
        if self.cache is not None and not overlap:
            # The tiles' pixels are final now (nothing in the batch overlapped them).
            for x, y, w, h, key in to_cache:
                self.cache.put((w, h, key), pixels[y : y + h, x : x + w].copy())

    def _fills(self, width: int) -> tuple[I64, I64, U32Array] | None:
        if not self.fills:
            return None
        f = np.asarray(self.fills, np.int64).reshape(-1, 6)
        index, owner = rect_pixels(f[:, 1], f[:, 2], f[:, 3], f[:, 4], width)
        return f[owner, 0], index, f[owner, 5].astype(np.uint32)

    def _subrects(self, width: int) -> tuple[I64, I64, U32Array] | None:
        parts = []
        if self.sub_meta:
            m = np.asarray(self.sub_meta, np.int64).reshape(-1, 7)
            xy = np.frombuffer(bytes(self.sub_xy), np.uint8).reshape(-1, 2)
            tile = np.repeat(np.arange(len(m)), m[:, 5])
            parts.append(self._subrect_pixels(m, tile, xy, m[tile, 6].astype(np.uint32), width))
        if self.csub_meta:
            m = np.asarray(self.csub_meta, np.int64).reshape(-1, 7)
            bpp = self.pf.bytes_per_pixel
            rows = np.frombuffer(bytes(self.csub_data), np.uint8).reshape(-1, bpp + 2)
            values = self.pf.pixels_to_rgbx(np.ascontiguousarray(rows[:, :bpp]), len(rows))
            tile = np.repeat(np.arange(len(m)), m[:, 5])
            parts.append(self._subrect_pixels(m, tile, rows[:, bpp:], values, width))
        return _concat(parts)

    @staticmethod
    def _subrect_pixels(
        m: I64, tile: I64, xy_u8: npt.NDArray[np.uint8], values: U32Array, width: int
    ) -> tuple[I64, I64, U32Array]:
        xy = xy_u8.astype(np.int64)
        sx, sy = xy[:, 0] >> 4, xy[:, 0] & 15
        sw, sh = (xy[:, 1] >> 4) + 1, (xy[:, 1] & 15) + 1
        if np.any(sx + sw > m[tile, 3]) or np.any(sy + sh > m[tile, 4]):
            raise InvalidRectangle("server sent a Hextile subrectangle outside its tile")
        index, owner = rect_pixels(m[tile, 1] + sx, m[tile, 2] + sy, sw, sh, width)
        return m[tile, 0][owner], index, values[owner]

    def _raw(self, width: int) -> tuple[I64, I64, U32Array] | None:
        if not self.raw_meta:
            return None
        m = np.asarray(self.raw_meta, np.int64).reshape(-1, 6)
        plain, compact = m[m[:, 5] == 0], m[m[:, 5] == 1]
        parts = []
        for meta, data, decode in (
            (plain, self.raw_data, self.pf.pixels_to_rgbx),
            (compact, self.raw_cdata, self.pf.cpixels_to_rgbx),
        ):
            if len(meta):
                index, owner = rect_pixels(meta[:, 1], meta[:, 2], meta[:, 3], meta[:, 4], width)
                parts.append((meta[owner, 0], index, decode(bytes(data), index.size)))
        return _concat(parts)

    def _packed(self, width: int) -> tuple[I64, I64, U32Array] | None:
        """Palette tiles with 1, 2 or 4-bit indices in byte-padded rows, worked on row-wise."""
        meta = self.packed_meta
        if not meta:
            return None
        m = np.array(meta, np.int64).reshape(-1, 8)
        raw = np.frombuffer(bytes(self.packed), np.uint8)
        th = m[:, 4]
        row_tile = np.repeat(np.arange(len(m)), th)
        row = np.arange(row_tile.size) - np.repeat(np.cumsum(th) - th, th)
        if len(set(meta[3::8])) == 1 and len(set(meta[5::8])) == 1:
            # One tile width and index size (the usual case): rows are evenly spaced.
            row_bytes = (meta[3] * meta[5] + 7) // 8
            starts = np.arange(row_tile.size) * row_bytes
            bases = (m[row_tile, 2] + row) * width + m[row_tile, 1]
            return self._packed_group(meta[5], row_bytes, raw, row_tile, m, starts, bases)
        tw, bits = m[:, 3], m[:, 5]
        rb = (tw * bits + 7) // 8
        tile_start = np.cumsum(rb * th) - rb * th
        row_start = tile_start[row_tile] + row * rb[row_tile]
        row_base = (m[row_tile, 2] + row) * width + m[row_tile, 1]
        group = bits[row_tile] * 1024 + rb[row_tile]
        parts = []
        for g in sorted(set(group.tolist())):  # (np.unique's first call costs ~40 ms)
            sel = np.nonzero(group == g)[0]
            parts.append(self._packed_group(g >> 10, g & 1023, raw, row_tile[sel], m,
                                            row_start[sel], row_base[sel]))  # fmt: skip
        return _concat(parts)

    def _packed_group(
        self, bits: int, rb: int, raw: npt.NDArray[np.uint8], row_tile: I64, m: I64,
        row_start: I64, row_base: I64,
    ) -> tuple[I64, I64, U32Array]:  # fmt: skip
        slots = _LUT[bits][raw[row_start[:, None] + np.arange(rb)]].reshape(len(row_tile), -1)
        tw = m[row_tile, 3]
        cols = np.arange(slots.shape[1])
        index = row_base[:, None] + cols
        colour = slots + m[row_tile, 6][:, None]
        limit = (m[row_tile, 6] + m[row_tile, 7])[:, None]
        if bool((tw == slots.shape[1]).all()):
            index, colour, limit = index.ravel(), colour.ravel(), np.repeat(limit, tw)
        else:
            valid = cols[None, :] < tw[:, None]
            index, colour = index[valid], colour[valid]
            limit = np.repeat(limit.ravel(), tw)
        if bool((colour >= limit).any()):
            raise InvalidEncodingData("server's ZRLE tile indexes past the end of its palette")
        palette = np.asarray(self.palette, np.uint32)
        return np.repeat(m[row_tile, 0], tw), index, palette[colour]

    def _blocks(self, width: int) -> tuple[I64, I64, U32Array] | None:
        if not self.block_meta:
            return None
        m = np.asarray(self.block_meta, np.int64).reshape(-1, 5)
        index, owner = rect_pixels(m[:, 1], m[:, 2], m[:, 3], m[:, 4], width)
        return m[owner, 0], index, np.concatenate([b.reshape(-1) for b in self.blocks])

    def _runs(self, width: int) -> tuple[I64, I64, U32Array] | None:
        if not self.run_meta:
            return None
        m = np.asarray(self.run_meta, np.int64).reshape(-1, 6)
        index, owner = rect_pixels(m[:, 1], m[:, 2], m[:, 3], m[:, 4], width)
        values = np.repeat(np.asarray(self.run_values, np.uint32), self.run_lengths)
        return m[owner, 0], index, values


def _lut(bits: int) -> npt.NDArray[np.int64]:
    per_byte = 8 // bits
    shifts = np.arange(8 - bits, -1, -bits)
    return ((np.arange(256)[:, None] >> shifts) & ((1 << bits) - 1)).reshape(256, per_byte)


_LUT = {1: _lut(1), 2: _lut(2), 4: _lut(4)}


def _scatter(flat: U32Array, parts: list[tuple[I64, I64, U32Array]], overlap: bool) -> None:
    """Write each part's values at its indices; in rectangle order if rectangles overlap."""
    if not overlap:
        for _, index, values in parts:
            flat[index] = values
        return
    keys = np.concatenate([p[0] for p in parts])
    order = np.argsort(keys, kind="stable")
    index = np.concatenate([p[1] for p in parts])[order]
    flat[index] = np.concatenate([p[2] for p in parts])[order]


def _concat(parts: list[tuple[I64, I64, U32Array]]) -> tuple[I64, I64, U32Array] | None:
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


def _overlapping(flat_rects: list[int]) -> bool:
    rects = np.asarray(flat_rects, np.int64).reshape(-1, 4)
    x, y, w, h = rects.T
    ox = (x[:, None] < (x + w)[None, :]) & (x[None, :] < (x + w)[:, None])
    oy = (y[:, None] < (y + h)[None, :]) & (y[None, :] < (y + h)[:, None])
    both = ox & oy
    np.fill_diagonal(both, False)
    return bool(both.any())
