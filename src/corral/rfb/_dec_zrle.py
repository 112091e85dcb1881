"""ZRLE decoder: one zlib stream per connection, 64x64 tiles of raw, solid, packed or RLE pixels."""

from __future__ import annotations

import numpy as np

from ._errors import InvalidEncodingData
from ._framebuffer import Framebuffer
from ._pixel import PixelFormat, U8Array, U32Array
from ._reader import DecodeContext, Reader, check_compressed_length

_TILE = 64


def decode_zrle(r: Reader, ctx: DecodeContext, x: int, y: int, w: int, h: int) -> None:
    length = r.u32()
    check_compressed_length(ctx.limits, length)
    compressed = r.take(length)
    pf = ctx.pixel_format
    cpix = pf.cpixel_size
    tiles = ((w + _TILE - 1) // _TILE) * ((h + _TILE - 1) // _TILE)
    # Largest legitimate tile data: every pixel an RLE run of one (pixel + length byte),
    # plus each tile's subencoding byte and a 127-colour palette.
    bound = w * h * (cpix + 2) + tiles * (1 + 127 * cpix)
    data = ctx.inflate(ctx.zrle_stream, compressed, bound, exact=False)
    pos = 0
    fb = ctx.framebuffer
    for ty in range(0, h, _TILE):
        th = min(_TILE, h - ty)
        for tx in range(0, w, _TILE):
            tw = min(_TILE, w - tx)
            pos = _tile(data, pos, pf, cpix, tw, th, x + tx, y + ty, fb)
    if pos != len(data):
        raise InvalidEncodingData(
            f"server's ZRLE rectangle holds {len(data) - pos} bytes beyond its last tile"
        )


def _need(data: bytes, pos: int, n: int) -> None:
    if pos + n > len(data):
        raise InvalidEncodingData("server's ZRLE tile runs past the end of its rectangle data")


def _tile(data: bytes, pos: int, pf: PixelFormat, cpix: int, tw: int, th: int,
          x: int, y: int, fb: Framebuffer) -> int:  # fmt: skip
    _need(data, pos, 1)
    kind = data[pos]
    pos += 1
    n = tw * th
    if kind == 0:
        _need(data, pos, n * cpix)
        fb.put(x, y, pf.cpixels_to_rgbx(data[pos : pos + n * cpix], n).reshape(th, tw))
        return pos + n * cpix
    if kind == 1:
        _need(data, pos, cpix)
        fb.fill(x, y, tw, th, int(pf.cpixels_to_rgbx(data[pos : pos + cpix], 1)[0]))
        return pos + cpix
    if 2 <= kind <= 16:
        palette, pos = _palette(data, pos, pf, cpix, kind)
        bits = 1 if kind == 2 else 2 if kind <= 4 else 4
        row_bytes = (tw * bits + 7) // 8
        _need(data, pos, row_bytes * th)
        packed = np.frombuffer(data, np.uint8, row_bytes * th, pos).reshape(th, row_bytes)
        index = _unpack_indices(packed, bits, tw)
        if int(index.max()) >= kind:
            raise InvalidEncodingData("server's ZRLE tile indexes past the end of its palette")
        fb.put(x, y, palette[index])
        return pos + row_bytes * th
    if kind == 128:
        pixels, pos = _plain_rle(data, pos, pf, cpix, n)
        fb.put(x, y, pixels.reshape(th, tw))
        return pos
    if kind >= 130:
        palette, pos = _palette(data, pos, pf, cpix, kind - 128)
        pixels, pos = _palette_rle(data, pos, palette, n)
        fb.put(x, y, pixels.reshape(th, tw))
        return pos
    raise InvalidEncodingData(f"server sent a ZRLE tile with the unused subencoding {kind}")


def _palette(data: bytes, pos: int, pf: PixelFormat, cpix: int, size: int) -> tuple[U32Array, int]:
    _need(data, pos, size * cpix)
    return pf.cpixels_to_rgbx(data[pos : pos + size * cpix], size), pos + size * cpix


def _unpack_indices(packed: U8Array, bits: int, width: int) -> U8Array:
    if bits == 1:
        return np.unpackbits(packed, axis=1)[:, :width]
    per_byte = 8 // bits
    shifts = np.arange(8 - bits, -1, -bits, dtype=np.uint8)
    mask = np.uint8((1 << bits) - 1)
    index = (packed[:, :, None] >> shifts) & mask
    return index.reshape(packed.shape[0], packed.shape[1] * per_byte)[:, :width]


def _run_length(data: bytes, pos: int) -> tuple[int, int]:
    length = 1
    end = len(data)
    while True:
        if pos >= end:
            raise InvalidEncodingData("server's ZRLE run length runs past the end of the data")
        b = data[pos]
        pos += 1
        length += b
        if b != 255:
            return length, pos


def _plain_rle(data: bytes, pos: int, pf: PixelFormat, cpix: int, n: int) -> tuple[U32Array, int]:
    starts: list[int] = []
    lengths: list[int] = []
    done = 0
    while done < n:
        _need(data, pos, cpix)
        starts.append(pos)
        length, pos = _run_length(data, pos + cpix)
        lengths.append(length)
        done += length
    if done != n:
        raise InvalidEncodingData("server's ZRLE run goes past the end of its tile")
    raw = np.frombuffer(data, np.uint8)
    offsets = np.asarray(starts)[:, None] + np.arange(cpix)
    colours = pf.cpixels_to_rgbx(raw[offsets].reshape(-1), len(starts))
    return np.repeat(colours, lengths), pos


def _palette_rle(data: bytes, pos: int, palette: U32Array, n: int) -> tuple[U32Array, int]:
    index: list[int] = []
    lengths: list[int] = []
    done = 0
    end = len(data)
    size = len(palette)
    while done < n:
        if pos >= end:
            raise InvalidEncodingData("server's ZRLE tile runs past the end of its data")
        b = data[pos]
        pos += 1
        if b & 128:
            length, pos = _run_length(data, pos)
            b &= 127
        else:
            length = 1
        if b >= size:
            raise InvalidEncodingData("server's ZRLE tile indexes past the end of its palette")
        index.append(b)
        lengths.append(length)
        done += length
    if done != n:
        raise InvalidEncodingData("server's ZRLE run goes past the end of its tile")
    return np.repeat(palette[np.asarray(index, np.intp)], lengths), pos
