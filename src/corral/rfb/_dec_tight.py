"""Tight and TightPNG decoders: fill, basic (copy/palette/gradient), JPEG and PNG."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import numpy.typing as npt
from PIL import Image

from ._errors import InvalidEncodingData
from ._pixel import PixelFormat, U8Array, U32Array, rgb24_to_rgbx
from ._reader import DecodeContext, Reader, check_compressed_length

I32Array = npt.NDArray[np.int32]
_FILL, _JPEG, _PNG = 8, 9, 10
_COPY, _PALETTE, _GRADIENT = 0, 1, 2
# Exceptions Pillow raises on corrupt or hostile image data.
_IMAGE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)


def _compact_length(r: Reader) -> int:
    b = r.u8()
    length = b & 0x7F
    if b & 0x80:
        b = r.u8()
        length |= (b & 0x7F) << 7
        if b & 0x80:
            length |= r.u8() << 14
    return length


def decode_tight(
    r: Reader, ctx: DecodeContext, x: int, y: int, w: int, h: int, png: bool = False
) -> None:
    """Decode one Tight (or, with ``png``, TightPNG) rectangle; reads it whole before acting."""
    control = r.u8()
    kind = control >> 4
    pf = ctx.pixel_format
    if kind == _FILL:
        value = pf.tpixels_to_rgbx(r.take(pf.tpixel_size), 1)
        _reset(ctx, control)
        ctx.framebuffer.fill(x, y, w, h, int(value[0]))
        return
    if kind in (_JPEG, _PNG):
        if kind == _PNG and not png:
            raise InvalidEncodingData("server sent a PNG rectangle inside plain Tight encoding")
        length = _compact_length(r)
        data = r.take(length)
        _reset(ctx, control)
        ctx.charge_decompressed(w * h * 4)
        ctx.framebuffer.put(x, y, _decode_image(data, w, h))
        return
    if kind > _PNG:
        raise InvalidEncodingData(f"server sent a Tight rectangle of unknown type {kind:#x}")
    _decode_basic(r, ctx, control, x, y, w, h)


def _reset(ctx: DecodeContext, control: int) -> None:
    for i in range(4):
        if control & (1 << i):
            ctx.tight_streams[i] = zlib.decompressobj()


def _decode_basic(
    r: Reader, ctx: DecodeContext, control: int, x: int, y: int, w: int, h: int
) -> None:
    pf = ctx.pixel_format
    tpix = pf.tpixel_size
    stream_id = (control >> 4) & 3
    filt = r.u8() if control & 0x40 else _COPY
    palette: U32Array | None = None
    if filt == _PALETTE:
        colours = r.u8() + 1
        palette = pf.tpixels_to_rgbx(r.take(colours * tpix), colours)
        size = ((w + 7) // 8) * h if colours == 2 else w * h
    elif filt in (_COPY, _GRADIENT):
        if filt == _GRADIENT and pf.bits_per_pixel == 8:
            raise InvalidEncodingData("server sent the Tight gradient filter at 8 bits per pixel")
        size = w * h * tpix
    else:
        raise InvalidEncodingData(f"server sent the unknown Tight filter {filt}")
    if size < 12:
        data = r.take(size)
        _reset(ctx, control)
        ctx.charge_decompressed(size)
    else:
        length = _compact_length(r)
        check_compressed_length(ctx.limits, length)
        compressed = r.take(length)
        _reset(ctx, control)
        data = ctx.inflate(ctx.tight_streams[stream_id], compressed, size, exact=True)
    if w == 0 or h == 0:
        return
    if palette is not None:
        block = _apply_palette(data, palette, w, h)
    elif filt == _GRADIENT:
        block = _gradient(data, pf, w, h)
    else:
        block = pf.tpixels_to_rgbx(data, w * h).reshape(h, w)
    ctx.framebuffer.put(x, y, block)


def _apply_palette(data: bytes, palette: U32Array, w: int, h: int) -> U32Array:
    raw = np.frombuffer(data, np.uint8)
    if len(palette) == 2:
        index = np.unpackbits(raw.reshape(h, (w + 7) // 8), axis=1)[:, :w]
    else:
        index = raw.reshape(h, w)
        if int(index.max()) >= len(palette):
            raise InvalidEncodingData("server's Tight palette index is past the end of its palette")
    return palette[index]


def _channels(data: bytes, pf: PixelFormat, n: int) -> tuple[I32Array, tuple[int, int, int]]:
    if pf.tpixel_is_rgb24:
        return np.frombuffer(data, np.uint8).reshape(n, 3).astype(np.int32), (255, 255, 255)
    order = ">" if pf.big_endian else "<"
    dtype = {16: order + "u2", 32: order + "u4"}[pf.bits_per_pixel]
    v = np.frombuffer(data, dtype, n).astype(np.int64)
    maxes = (pf.red_max, pf.green_max, pf.blue_max)
    shifts = (pf.red_shift, pf.green_shift, pf.blue_shift)
    chans = np.stack([(v >> s) & m for s, m in zip(shifts, maxes, strict=True)], axis=1)
    return chans.astype(np.int32), maxes


def _gradient(data: bytes, pf: PixelFormat, w: int, h: int) -> U32Array:
    """Undo the gradient filter; pixels on one anti-diagonal are independent of each other."""
    chans, maxes = _channels(data, pf, w * h)
    diff = chans.reshape(h, w, 3)
    cmax = np.asarray(maxes, np.int32)
    out = np.zeros((h + 1, w + 1, 3), np.int32)
    for d in range(w + h - 1):
        ys = np.arange(max(0, d - w + 1), min(h - 1, d) + 1)
        xs = d - ys
        est = out[ys + 1, xs] + out[ys, xs + 1] - out[ys, xs]
        np.clip(est, 0, cmax, out=est)
        out[ys + 1, xs + 1] = (est + diff[ys, xs]) & cmax
    result = out[1:, 1:]
    if pf.tpixel_is_rgb24:
        return rgb24_to_rgbx(result.astype(np.uint8))
    shifts = (pf.red_shift, pf.green_shift, pf.blue_shift)
    values = sum(result[:, :, i].astype(np.uint32) << s for i, s in enumerate(shifts))
    return pf.values_to_rgbx(np.asarray(values, np.uint32))


def _decode_image(data: bytes, w: int, h: int) -> U32Array:
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.size != (w, h):
                raise InvalidEncodingData(
                    f"server sent a {im.size[0]}x{im.size[1]} image for a {w}x{h} rectangle"
                )
            rgb: U8Array = np.asarray(im.convert("RGB"))
    except _IMAGE_ERRORS as exc:
        raise InvalidEncodingData(f"server sent an undecodable JPEG/PNG image: {exc}") from None
    return rgb24_to_rgbx(rgb)
