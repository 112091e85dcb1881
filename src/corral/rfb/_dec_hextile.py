"""Hextile decoder: resumable tile by tile; tiles go to the framebuffer's ``PaintBatch``."""

from __future__ import annotations

from ._errors import InvalidEncodingData
from ._reader import DecodeContext, Reader

_RAW, _BG, _FG, _ANY_SUBRECTS, _COLOURED = 1, 2, 4, 8, 16


class HextileDecoder:
    """Decodes one Hextile rectangle; ``feed`` consumes whole tiles as they arrive.

    A rectangle split over several reads resumes at its first incomplete tile.
    """

    def __init__(self, ctx: DecodeContext, x: int, y: int, w: int, h: int) -> None:
        self._ctx = ctx
        self._x, self._y, self._w, self._h = x, y, w, h
        self._cols = (w + 15) // 16
        self._count = self._cols * ((h + 15) // 16)
        self._next = 0
        self._bg = -1
        self._fg = -1
        self._epoch = -1
        self._rect_no = 0

    def feed(self, r: Reader) -> bool:
        """Parse all complete tiles in the buffer; True when the rectangle is done."""
        ctx = self._ctx
        batch = ctx.framebuffer.batch
        if self._epoch != batch.epoch or not batch.pending:
            self._rect_no = batch.add_rect(self._x, self._y, self._w, self._h)
            self._epoch = batch.epoch
        rect_no = self._rect_no
        bpp = ctx.pixel_format.bytes_per_pixel
        colour = ctx.read_colour
        fills, sub_meta, csub_meta = batch.fills, batch.sub_meta, batch.csub_meta
        buf = r.buf
        end = len(buf)
        pos = r.pos
        x0, y0, w, h, cols, count = self._x, self._y, self._w, self._h, self._cols, self._count
        bg, fg = self._bg, self._fg
        i = self._next
        while i < count and pos < end:
            row, col = divmod(i, cols)
            tx, ty = x0 + col * 16, y0 + row * 16
            tw = min(16, w - col * 16)
            th = min(16, h - row * 16)
            kind = buf[pos]
            p = pos + 1
            if kind & _RAW:
                n = tw * th * bpp
                if p + n > end:
                    break
                batch.raw_meta += (rect_no, tx, ty, tw, th)
                batch.raw_data += buf[p : p + n]
                pos = p + n
                i += 1
                continue
            new_bg, new_fg, nsub = bg, fg, 0
            if kind & _BG:
                if p + bpp > end:
                    break
                new_bg = colour(buf, p)
                p += bpp
            if kind & _FG:
                if p + bpp > end:
                    break
                new_fg = colour(buf, p)
                p += bpp
            if kind & _ANY_SUBRECTS:
                if p >= end:
                    break
                nsub = buf[p]
                p += 1
            size = nsub * (2 + bpp) if kind & _COLOURED else nsub * 2
            if p + size > end:
                break
            if new_bg < 0:
                raise InvalidEncodingData("server sent a Hextile tile without a background")
            fills += (rect_no, tx, ty, tw, th, new_bg)
            if nsub:
                batch.pixels += nsub << 8
                if kind & _COLOURED:
                    csub_meta += (rect_no, tx, ty, tw, th, nsub, 0)
                    batch.csub_data += buf[p : p + size]
                else:
                    if new_fg < 0:
                        raise InvalidEncodingData("server sent Hextile subrects without a colour")
                    sub_meta += (rect_no, tx, ty, tw, th, nsub, new_fg)
                    batch.sub_xy += buf[p : p + size]
            bg, fg = new_bg, new_fg
            pos = p + size
            i += 1
        self._bg, self._fg, self._next = bg, fg, i
        r.pos = pos
        return i >= count
