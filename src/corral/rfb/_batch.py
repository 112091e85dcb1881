"""Deferred painting: tiles of many small rectangles applied in a few numpy calls.

QEMU sends dozens of tiny rectangles per update (a 16x10 rectangle per changed text cell group);
painting each with numpy would cost more in call overhead than in work. Hextile tiles are
therefore parsed in Python into flat lists here, and ``flush`` (at the end of the update, before
any direct paint, or when the batch is large) turns them into one scatter per kind. (ZRLE paints
each rectangle at once, after flushing this batch; it only shares ``TileCache``.)

Order: inside one rectangle tiles do not overlap and a Hextile background precedes its
subrectangles, so painting all fills first is exact. Only if two rectangles of the batch
overlap is the paint order restored by a stable sort on the rectangle's sequence number.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from ._errors import InvalidRectangle
from ._pixel import PixelFormat, U32Array

I64 = npt.NDArray[np.int64]
# Bounds of one batch: its memory, and the work of one flush (subrectangles count 256 pixels).
_MAX_RECTS = 256
_MAX_PIXELS = 1 << 20


class TileCache:
    """Decoded ZRLE tiles by their encoded bytes, up to a total number of pixels."""

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
        self._clear()

    def _clear(self) -> None:
        self.pending = False
        self.rects: list[int] = []  # x, y, w, h per rectangle
        self.fills: list[int] = []  # rect, x, y, w, h, value
        self.sub_meta: list[int] = []  # rect, x, y, tile w, tile h, count, foreground value
        self.sub_xy = bytearray()  # 2 bytes per subrectangle (Hextile x|y, w-1|h-1)
        self.csub_meta: list[int] = []  # the same for coloured subrectangles (value unused)
        self.csub_data = bytearray()  # wire pixel + 2 bytes per coloured subrectangle
        self.raw_meta: list[int] = []  # rect, x, y, w, h
        self.raw_data = bytearray()
        self.pixels = 0
        self.epoch = getattr(self, "epoch", 0) + 1

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
        width = pixels.shape[1]
        overlap = len(self.rects) > 4 and _overlapping(self.rects)
        # A few fills are cheaper as slices than vectorised (numpy calls cost ~µs each).
        fills = self.fills if not overlap and len(self.fills) <= 6 * 128 else []
        parts = [p for p in (None if fills else self._fills(width), self._subrects(width),
                             self._raw(width))
                 if p is not None]  # fmt: skip
        self._clear()
        total = sum(int(p[1].size) for p in parts)
        total += sum(fills[i + 3] * fills[i + 4] for i in range(0, len(fills), 6))
        charge(total)
        for i in range(0, len(fills), 6):
            _, x, y, w, h, value = fills[i : i + 6]
            pixels[y : y + h, x : x + w] = value
        _scatter(pixels.reshape(-1), parts, overlap)

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
        m = np.asarray(self.raw_meta, np.int64).reshape(-1, 5)
        index, owner = rect_pixels(m[:, 1], m[:, 2], m[:, 3], m[:, 4], width)
        return m[owner, 0], index, self.pf.pixels_to_rgbx(bytes(self.raw_data), index.size)


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
