"""Hextile decoder: resumable tile by tile, painting each batch of tiles with numpy."""

from __future__ import annotations

import numpy as np

from ._errors import InvalidEncodingData, InvalidRectangle
from ._reader import DecodeContext, Reader

_RAW, _BG, _FG, _ANY_SUBRECTS, _COLOURED = 1, 2, 4, 8, 16


class HextileDecoder:
    """Decodes one Hextile rectangle; ``feed`` consumes whole tiles as they arrive.

    A large rectangle arrives in many reads: parsing resumes at the first incomplete tile
    instead of restarting, and each batch of parsed tiles is painted in a few numpy calls.
    """

    def __init__(self, ctx: DecodeContext, x: int, y: int, w: int, h: int) -> None:
        self._ctx = ctx
        self._x, self._y, self._w, self._h = x, y, w, h
        self._cols = (w + 15) // 16
        self._count = self._cols * ((h + 15) // 16)
        self._next = 0
        self._bg = b""
        self._fg = b""

    def feed(self, r: Reader) -> bool:
        """Parse and paint all complete tiles in the buffer; True when the rectangle is done."""
        bpp = self._ctx.pixel_format.bytes_per_pixel
        buf = r.buf
        end = len(buf)
        pos = r.pos
        fills: list[tuple[int, int, int, int, bytes]] = []
        raws: list[tuple[int, int, int, int, bytes]] = []
        # Subrectangle batches: (tile x, tile y, tile w, tile h, data, colour or b"" if coloured)
        subs: list[tuple[int, int, int, int, bytes, bytes]] = []
        bg, fg = self._bg, self._fg
        i = self._next
        while i < self._count:
            if pos >= end:
                break
            row, col = divmod(i, self._cols)
            tx, ty = col * 16, row * 16
            tw, th = min(16, self._w - tx), min(16, self._h - ty)
            kind = buf[pos]
            p = pos + 1
            if kind & _RAW:
                n = tw * th * bpp
                if p + n > end:
                    break
                raws.append((tx, ty, tw, th, bytes(buf[p : p + n])))
                pos = p + n
                i += 1
                continue
            if kind & _BG:
                if p + bpp > end:
                    break
                new_bg = bytes(buf[p : p + bpp])
                p += bpp
            else:
                new_bg = bg
            new_fg = fg
            if kind & _FG:
                if p + bpp > end:
                    break
                new_fg = bytes(buf[p : p + bpp])
                p += bpp
            nsub = 0
            if kind & _ANY_SUBRECTS:
                if p >= end:
                    break
                nsub = buf[p]
                p += 1
            size = nsub * (2 + bpp) if kind & _COLOURED else nsub * 2
            if p + size > end:
                break
            if not new_bg:
                raise InvalidEncodingData("server sent a Hextile tile without a background")
            fills.append((tx, ty, tw, th, new_bg))
            if nsub:
                if not kind & _COLOURED and not new_fg:
                    raise InvalidEncodingData("server sent Hextile subrects without a foreground")
                colour = b"" if kind & _COLOURED else new_fg
                subs.append((tx, ty, tw, th, bytes(buf[p : p + size]), colour))
            bg, fg = new_bg, new_fg
            pos = p + size
            i += 1
        self._bg, self._fg, self._next = bg, fg, i
        r.pos = pos
        self._paint(fills, raws, subs)
        return i >= self._count

    def _paint(
        self,
        fills: list[tuple[int, int, int, int, bytes]],
        raws: list[tuple[int, int, int, int, bytes]],
        subs: list[tuple[int, int, int, int, bytes, bytes]],
    ) -> None:
        pf = self._ctx.pixel_format
        fb = self._ctx.framebuffer
        x0, y0 = self._x, self._y
        if fills:
            values = pf.pixels_to_rgbx(b"".join(f[4] for f in fills), len(fills))
            for (tx, ty, tw, th, _), value in zip(fills, values.tolist(), strict=True):
                fb.fill(x0 + tx, y0 + ty, tw, th, value)
        for tx, ty, tw, th, data in raws:
            fb.put(x0 + tx, y0 + ty, pf.pixels_to_rgbx(data, tw * th).reshape(th, tw))
        if subs:
            self._paint_subrects(subs)

    def _paint_subrects(self, subs: list[tuple[int, int, int, int, bytes, bytes]]) -> None:
        pf = self._ctx.pixel_format
        bpp = pf.bytes_per_pixel
        parts_xy, parts_colour, origin, limit = [], [], [], []
        for tx, ty, tw, th, data, colour in subs:
            if colour:
                n = len(data) // 2
                parts_xy.append(np.frombuffer(data, np.uint8).reshape(n, 2))
                parts_colour.append(pf.pixels_to_rgbx(colour, 1).repeat(n))
            else:
                n = len(data) // (bpp + 2)
                rows = np.frombuffer(data, np.uint8).reshape(n, bpp + 2)
                parts_colour.append(pf.pixels_to_rgbx(np.ascontiguousarray(rows[:, :bpp]), n))
                parts_xy.append(rows[:, bpp:])
            origin.append(np.array([[tx, ty]] * n, np.int64).reshape(n, 2))
            limit.append(np.array([[tw, th]] * n, np.int64).reshape(n, 2))
        xy = np.concatenate(parts_xy).astype(np.int64)
        org = np.concatenate(origin)
        lim = np.concatenate(limit)
        sx, sy = xy[:, 0] >> 4, xy[:, 0] & 15
        sw, sh = (xy[:, 1] >> 4) + 1, (xy[:, 1] & 15) + 1
        if np.any(sx + sw > lim[:, 0]) or np.any(sy + sh > lim[:, 1]):
            raise InvalidRectangle("server sent a Hextile subrectangle outside its tile")
        self._ctx.framebuffer.paint_rects(
            org[:, 0] + sx + self._x,
            org[:, 1] + sy + self._y,
            sw,
            sh,
            np.concatenate(parts_colour),
        )
