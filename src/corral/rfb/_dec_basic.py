"""Raw, CopyRect, RRE and Zlib decoders (all-or-nothing: they wait for the whole rectangle)."""

from __future__ import annotations

import numpy as np

from ._errors import InvalidRectangle
from ._reader import DecodeContext, Reader, check_compressed_length


def decode_raw(r: Reader, ctx: DecodeContext, x: int, y: int, w: int, h: int) -> None:
    pf = ctx.pixel_format
    data = r.take(w * h * pf.bytes_per_pixel)
    if w and h:
        ctx.framebuffer.put(x, y, pf.pixels_to_rgbx(data, w * h).reshape(h, w))


def decode_copy_rect(r: Reader, ctx: DecodeContext, x: int, y: int, w: int, h: int) -> None:
    src_x = r.u16()
    src_y = r.u16()
    ctx.framebuffer.copy(src_x, src_y, x, y, w, h)


def decode_rre(r: Reader, ctx: DecodeContext, x: int, y: int, w: int, h: int) -> None:
    pf = ctx.pixel_format
    bpp = pf.bytes_per_pixel
    count = r.u32()
    limits = ctx.limits
    limits.check(count, limits.max_subrects_per_rect, "an RRE rectangle", "max_subrects_per_rect")
    background = r.take(bpp)
    data = np.frombuffer(r.take(count * (bpp + 8)), np.uint8).reshape(count, bpp + 8)
    colours = pf.pixels_to_rgbx(np.ascontiguousarray(data[:, :bpp]), count)
    geometry = data[:, bpp:].copy().view(">u2").reshape(count, 4).astype(np.int64)
    sx, sy, sw, sh = geometry.T
    if count and (np.any(sx + sw > w) or np.any(sy + sh > h)):
        raise InvalidRectangle("server sent an RRE subrectangle outside its rectangle")
    fb = ctx.framebuffer
    fb.fill(x, y, w, h, int(pf.pixels_to_rgbx(background, 1)[0]))
    fb.paint_rects(sx + x, sy + y, sw, sh, colours)


def decode_zlib(r: Reader, ctx: DecodeContext, x: int, y: int, w: int, h: int) -> None:
    length = r.u32()
    check_compressed_length(ctx.limits, length)
    compressed = r.take(length)
    pf = ctx.pixel_format
    size = w * h * pf.bytes_per_pixel
    data = ctx.inflate(ctx.zlib_stream, compressed, size, exact=True)
    if size:
        ctx.framebuffer.put(x, y, pf.pixels_to_rgbx(data, w * h).reshape(h, w))
