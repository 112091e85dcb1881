"""ZRLE decoder: one zlib stream per connection; 64x64 tiles go to the ``PaintBatch``."""

from __future__ import annotations

import zlib

from ._batch import PaintBatch
from ._errors import InvalidEncodingData
from ._reader import DecodeContext, Reader, check_compressed_length

_TILE = 64


def decode_zrle(r: Reader, ctx: DecodeContext, x: int, y: int, w: int, h: int) -> None:
    """Queue one ZRLE rectangle; ``expand_zrle`` decompresses and parses the queue at once.

    QEMU sends many one-tile rectangles: one zlib call and one tile loop for all of them
    costs a fraction of doing each alone (the zlib stream is continuous either way).
    """
    length = r.u32()
    check_compressed_length(ctx.limits, length)
    queue_zrle(ctx, x, y, w, h, r.take(length))


def queue_zrle(ctx: DecodeContext, x: int, y: int, w: int, h: int, compressed: bytes) -> None:
    tiles = ((w + _TILE - 1) // _TILE) * ((h + _TILE - 1) // _TILE)
    # Largest legitimate tile data: every pixel an RLE run of one (pixel + length byte),
    # plus each tile's subencoding byte and a 127-colour palette.
    bound = w * h * (ctx.cpixel_size + 2) + tiles * (1 + 127 * ctx.cpixel_size)
    ctx.charge_decompressed(bound)
    batch = ctx.framebuffer.batch
    rect_no = batch.add_rect(x, y, w, h)
    batch.zrle_queue.append((rect_no, x, y, w, h, compressed))
    batch.zrle_bound += bound
    if batch.zrle_expand is None:
        batch.zrle_expand = lambda b: expand_zrle(ctx, b)


def expand_zrle(ctx: DecodeContext, batch: PaintBatch) -> None:
    """Decompress every queued ZRLE rectangle and parse their tiles into the batch."""
    queue, bound = batch.zrle_queue, batch.zrle_bound
    batch.zrle_queue, batch.zrle_bound = [], 0
    stream = ctx.zrle_stream
    try:
        data = stream.decompress(b"".join(q[5] for q in queue), bound + 1)
    except zlib.error as exc:
        raise InvalidEncodingData(f"server sent a corrupt zlib stream: {exc}") from None
    if len(data) > bound or stream.unconsumed_tail:
        raise InvalidEncodingData("server's ZRLE data expands to more than its rectangles hold")
    pos = 0
    for rect_no, x, y, w, h, _ in queue:
        if w <= _TILE and h <= _TILE:  # the common case: one tile
            pos = _tile(data, pos, ctx, batch, rect_no, x, y, w, h)
            continue
        for ty in range(0, h, _TILE):
            th = min(_TILE, h - ty)
            for tx in range(0, w, _TILE):
                tw = min(_TILE, w - tx)
                pos = _tile(data, pos, ctx, batch, rect_no, x + tx, y + ty, tw, th)
    if pos != len(data):
        raise InvalidEncodingData(
            f"server's ZRLE rectangles hold {len(data) - pos} bytes beyond their last tile"
        )


def _short() -> InvalidEncodingData:
    return InvalidEncodingData("server's ZRLE tile runs past the end of its rectangle data")


def _tile(data: bytes, pos: int, ctx: DecodeContext, batch: PaintBatch, rect_no: int,
          x: int, y: int, tw: int, th: int) -> int:  # fmt: skip
    if pos >= len(data):
        raise _short()
    kind = data[pos]
    start = pos
    pos += 1
    cpix = ctx.cpixel_size
    if kind == 1:
        if pos + cpix > len(data):
            raise _short()
        batch.fills += (rect_no, x, y, tw, th, ctx.read_ccolour(data, pos))
        return pos + cpix
    if kind == 0:
        end = pos + tw * th * cpix
    elif 2 <= kind <= 16:
        bits = 1 if kind == 2 else 2 if kind <= 4 else 4
        end = pos + kind * cpix + ((tw * bits + 7) // 8) * th
    elif kind >= 128:
        return _rle_tile(data, pos, kind, ctx, batch, (rect_no, x, y, tw, th))
    else:
        raise InvalidEncodingData(f"server sent a ZRLE tile with the unused subencoding {kind}")
    if end > len(data):
        raise _short()
    # Text consoles repeat the same few tiles: reuse their decoded pixels.
    key = data[start:end]
    cached = ctx.tile_cache.get((tw, th, key))
    if cached is not None:
        batch.block_meta += (rect_no, x, y, tw, th)
        batch.blocks.append(cached)
        return end
    batch.to_cache.append((x, y, tw, th, key))
    if kind == 0:
        batch.raw_meta += (rect_no, x, y, tw, th, 1)
        batch.raw_cdata += data[pos:end]
        return end
    read = ctx.read_ccolour
    palette_end = pos + kind * cpix
    batch.packed_meta += (rect_no, x, y, tw, th, bits, len(batch.palette), kind)
    batch.palette += [read(data, p) for p in range(pos, palette_end, cpix)]
    batch.packed += data[palette_end:end]
    return end


def _rle_tile(data: bytes, pos: int, kind: int, ctx: DecodeContext, batch: PaintBatch,
              tile: tuple[int, int, int, int, int]) -> int:  # fmt: skip
    if kind == 128:
        return _plain_rle(data, pos, ctx, batch, tile)
    if kind == 129:
        raise InvalidEncodingData("server sent a ZRLE tile with the unused subencoding 129")
    size = kind - 128
    end = pos + size * ctx.cpixel_size
    if end > len(data):
        raise _short()
    read = ctx.read_ccolour
    palette = [read(data, p) for p in range(pos, end, ctx.cpixel_size)]
    return _palette_rle(data, end, palette, batch, tile)


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


def _add_runs(batch: PaintBatch, tile: tuple[int, int, int, int, int], values: list[int],
              lengths: list[int]) -> None:  # fmt: skip
    if sum(lengths) != tile[3] * tile[4]:
        raise InvalidEncodingData("server's ZRLE run goes past the end of its tile")
    batch.run_meta += (*tile, len(values))
    batch.run_values += values
    batch.run_lengths += lengths


def _plain_rle(data: bytes, pos: int, ctx: DecodeContext, batch: PaintBatch,
               tile: tuple[int, int, int, int, int]) -> int:  # fmt: skip
    n = tile[3] * tile[4]
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
    _add_runs(batch, tile, values, lengths)
    return pos


def _palette_rle(data: bytes, pos: int, palette: list[int], batch: PaintBatch,
                 tile: tuple[int, int, int, int, int]) -> int:  # fmt: skip
    n = tile[3] * tile[4]
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
    _add_runs(batch, tile, values, lengths)
    return pos
