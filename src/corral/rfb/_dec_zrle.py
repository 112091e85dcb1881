"""ZRLE decoder: one zlib stream per connection; tiles painted straight into the framebuffer.

QEMU sends a scrolling text console as ~18 rectangles of 16x1 to 16x10 pixels per update, so
the cost is per rectangle and per tile, never per pixel. Each rectangle is therefore decoded as
soon as it arrives (inflating a few dozen bytes costs ~0.3 µs; queueing rectangles for one zlib
call and one vectorised paint cost more in bookkeeping than it saved), and each tile is one
numpy slice assignment: a solid tile with its value; a packed-palette or raw tile with a block
from the tile cache (a text console repeats the same glyph cells) or, on a miss, decoded with a
few numpy calls and cached; an RLE tile with the block its runs expand to."""

from __future__ import annotations

import zlib

import numpy as np
import numpy.typing as npt

from ._errors import InvalidEncodingData
from ._pixel import U32Array
from ._reader import DecodeContext, Reader, check_compressed_length

_TILE = 64


def decode_zrle(r: Reader, ctx: DecodeContext, x: int, y: int, w: int, h: int) -> None:
    length = r.u32()
    check_compressed_length(ctx.limits, length)
    paint_zrle(ctx, x, y, w, h, r.take(length))


def paint_zrle(
    ctx: DecodeContext, x: int, y: int, w: int, h: int, compressed: bytes | bytearray
) -> None:
    """Decode one ZRLE rectangle (already checked to lie inside the framebuffer)."""
    fb = ctx.framebuffer
    if fb.batch.pending:
        fb.flush()  # Hextile tiles of earlier rectangles still wait: paint them first
    if not 0 < w <= _TILE or not 0 < h <= _TILE:
        _paint_tiles(ctx, x, y, w, h, compressed)
        return
    # One tile (nearly every rectangle QEMU sends): its bytes are the whole data.
    cpix = ctx.cpixel_size
    bound = w * h * (cpix + 2) + 1 + 127 * cpix
    ctx.decompressed += bound
    if ctx.decompressed > ctx.limits.max_decompressed_bytes_per_update:
        ctx.charge_decompressed(0)  # raises the limit's error
    stream = ctx.zrle_stream
    try:
        data = stream.decompress(compressed, bound + 1)
    except zlib.error as exc:
        raise InvalidEncodingData(f"server sent a corrupt zlib stream: {exc}") from None
    if len(data) > bound or stream.unconsumed_tail:
        raise InvalidEncodingData("server's ZRLE data expands to more than its rectangle holds")
    fb.charge(w * h)
    # Per rectangle, skip two wrappers (a few per cent of ZRLE's time): the batch was
    # flushed above, and the cache's get is its dict's.
    pixels = fb._pixels
    if len(data) == 1 + cpix and data[0] == 1:
        pixels[y : y + h, x : x + w] = ctx.read_ccolour(data, 1)
        return
    block = ctx.tile_cache._tiles.get((w, h, data))  # a hit is a tile that was valid before
    if block is not None:
        pixels[y : y + h, x : x + w] = block
    elif (end := _tile(data, 0, ctx, pixels, x, y, w, h)) != len(data):
        raise _beyond(data, end)


def _paint_tiles(
    ctx: DecodeContext, x: int, y: int, w: int, h: int, compressed: bytes | bytearray
) -> None:
    cpix = ctx.cpixel_size
    tiles = ((w + _TILE - 1) // _TILE) * ((h + _TILE - 1) // _TILE)
    data = _inflate(ctx, compressed, w * h * (cpix + 2) + tiles * (1 + 127 * cpix))
    fb = ctx.framebuffer
    fb.charge(w * h)
    pixels = fb.pixels
    pos = 0
    for ty in range(y, y + h, _TILE):
        th = min(_TILE, y + h - ty)
        for tx in range(x, x + w, _TILE):
            pos = _tile(data, pos, ctx, pixels, tx, ty, min(_TILE, x + w - tx), th)
    if pos != len(data):
        raise _beyond(data, pos)


def _inflate(ctx: DecodeContext, compressed: bytes | bytearray, bound: int) -> bytes:
    """The rectangle's tile data; ``bound`` is the most its tiles can legitimately take:
    every pixel an RLE run of one (pixel + length byte), plus per tile its subencoding byte
    and a 127-colour palette."""
    ctx.charge_decompressed(bound)
    stream = ctx.zrle_stream
    try:
        data = stream.decompress(compressed, bound + 1)
    except zlib.error as exc:
        raise InvalidEncodingData(f"server sent a corrupt zlib stream: {exc}") from None
    if len(data) > bound or stream.unconsumed_tail:
        raise InvalidEncodingData("server's ZRLE data expands to more than its rectangle holds")
    return data


def _beyond(data: bytes, pos: int) -> InvalidEncodingData:
    return InvalidEncodingData(
        f"server's ZRLE rectangle holds {len(data) - pos} bytes beyond its last tile"
    )


def _short() -> InvalidEncodingData:
    return InvalidEncodingData("server's ZRLE tile runs past the end of its rectangle data")


def _tile(data: bytes, pos: int, ctx: DecodeContext, pixels: U32Array,
          x: int, y: int, tw: int, th: int) -> int:  # fmt: skip
    """Paint the tile at ``data[pos]``; returns the position after it."""
    if pos >= len(data):
        raise _short()
    kind = data[pos]
    if kind == 1:
        end = pos + 1 + ctx.cpixel_size
        if end > len(data):
            raise _short()
        pixels[y : y + th, x : x + tw] = ctx.read_ccolour(data, pos + 1)
        return end
    if 2 <= kind <= 16:
        bits = 1 if kind == 2 else 2 if kind <= 4 else 4
        end = pos + 1 + kind * ctx.cpixel_size + ((tw * bits + 7) // 8) * th
    elif kind == 0:
        end = pos + 1 + tw * th * ctx.cpixel_size
    elif kind >= 128:
        runs, end = _rle_tile(data, pos + 1, kind, ctx, tw, th)
        pixels[y : y + th, x : x + tw] = runs
        return end
    else:
        raise InvalidEncodingData(f"server sent a ZRLE tile with the unused subencoding {kind}")
    if end > len(data):
        raise _short()
    key = (tw, th, data[pos:end])
    block = ctx.tile_cache.get(key)
    if block is None:
        if kind:
            block = _palette_tile(data, pos + 1, kind, bits, ctx, tw, th)
        else:
            cpixels = data[pos + 1 : end]
            block = ctx.pixel_format.cpixels_to_rgbx(cpixels, tw * th).reshape(th, tw)
        ctx.tile_cache.put(key, block)
    pixels[y : y + th, x : x + tw] = block
    return end


def _palette(data: bytes, pos: int, size: int, ctx: DecodeContext) -> list[int]:
    read, cpix = ctx.read_ccolour, ctx.cpixel_size
    return [read(data, p) for p in range(pos, pos + size * cpix, cpix)]


def _palette_tile(data: bytes, pos: int, kind: int, bits: int, ctx: DecodeContext,
                  tw: int, th: int) -> U32Array:  # fmt: skip
    """A packed-palette tile (1, 2 or 4-bit indices, rows padded to whole bytes)."""
    start = pos + kind * ctx.cpixel_size
    rb = (tw * bits + 7) // 8
    packed = np.frombuffer(data, np.uint8, rb * th, start)
    if kind == 2:  # two colours, the text console's glyph cells: one lookup per byte
        read = ctx.read_ccolour
        table = _two_colour_table(read(data, pos), read(data, pos + ctx.cpixel_size))
        block: U32Array = table.take(packed, axis=0).reshape(th, rb * 8)
        return block if tw == rb * 8 else block[:, :tw]
    colours = _palette(data, pos, kind, ctx)
    index = _LUT[bits].take(packed, axis=0).reshape(th, -1)[:, :tw]
    if kind & (kind - 1) and int(index.max()) >= kind:  # not every index is a colour
        raise InvalidEncodingData("server's ZRLE tile indexes past the end of its palette")
    block = np.array(colours, np.uint32)[index]
    return block


def _lut(bits: int) -> npt.NDArray[np.uint8]:
    """Byte → its ``8 // bits`` indices, most significant first."""
    shifts = np.arange(8 - bits, -1, -bits)
    return ((np.arange(256)[:, None] >> shifts) & ((1 << bits) - 1)).astype(np.uint8)


_LUT = {1: _lut(1), 2: _lut(2), 4: _lut(4)}
_TWO_COLOURS: dict[tuple[int, int], U32Array] = {}


def _two_colour_table(background: int, foreground: int) -> U32Array:
    """Byte of a 1-bit tile → its 8 pixels; a console uses a handful of colour pairs."""
    table = _TWO_COLOURS.get((background, foreground))
    if table is None:
        if len(_TWO_COLOURS) >= 256:
            _TWO_COLOURS.clear()
        table = np.where(_LUT[1], np.uint32(foreground), np.uint32(background))
        _TWO_COLOURS[background, foreground] = table
    return table


def _rle_tile(data: bytes, pos: int, kind: int, ctx: DecodeContext,
              tw: int, th: int) -> tuple[U32Array, int]:  # fmt: skip
    if kind == 128:
        values, lengths, pos = _plain_runs(data, pos, ctx, tw * th)
    elif kind == 129:
        raise InvalidEncodingData("server sent a ZRLE tile with the unused subencoding 129")
    else:
        size = kind - 128
        end = pos + size * ctx.cpixel_size
        if end > len(data):
            raise _short()
        values, lengths, pos = _palette_runs(data, end, _palette(data, pos, size, ctx), tw * th)
    if sum(lengths) != tw * th:
        raise InvalidEncodingData("server's ZRLE run goes past the end of its tile")
    block = np.repeat(np.array(values, np.uint32), lengths).reshape(th, tw)
    return block, pos


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


def _plain_runs(data: bytes, pos: int, ctx: DecodeContext,
                n: int) -> tuple[list[int], list[int], int]:  # fmt: skip
    cpix = ctx.cpixel_size
    read = ctx.read_ccolour
    values: list[int] = []
    lengths: list[int] = []
    done = 0
    while done < n:
        if pos + cpix > len(data):
            raise _short()
        values.append(read(data, pos))
        length, pos = _run_length(data, pos + cpix)
        lengths.append(length)
        done += length
    return values, lengths, pos


def _palette_runs(data: bytes, pos: int, palette: list[int],
                  n: int) -> tuple[list[int], list[int], int]:  # fmt: skip
    values: list[int] = []
    lengths: list[int] = []
    done = 0
    end = len(data)
    size = len(palette)
    while done < n:
        if pos >= end:
            raise _short()
        b = data[pos]
        pos += 1
        if b & 128:
            length, pos = _run_length(data, pos)
            b &= 127
        else:
            length = 1
        if b >= size:
            raise InvalidEncodingData("server's ZRLE tile indexes past the end of its palette")
        values.append(palette[b])
        lengths.append(length)
        done += length
    return values, lengths, pos
