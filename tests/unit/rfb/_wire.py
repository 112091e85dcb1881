"""Server-side RFB bytes for tests and fuzzing: handshakes, updates and simple encoders.

The encoders take ``(h, w)`` uint32 RGBX pixel arrays (the client's default format) and aim at
covering the decoders' branches, not at compressing well.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt

from corral.rfb import RGBX32, PixelFormat

Pixels = npt.NDArray[np.uint32]


def handshake(width: int, height: int, name: bytes = b"test", pf: PixelFormat = RGBX32) -> bytes:
    """RFB 3.8, security None, SecurityResult OK, ServerInit."""
    return (
        b"RFB 003.008\n"
        + b"\x01\x01"
        + struct.pack(">I", 0)
        + struct.pack(">HH", width, height)
        + pf.to_bytes()
        + struct.pack(">I", len(name))
        + name
    )


def update(*rects: bytes, count: int | None = None) -> bytes:
    return struct.pack(">BxH", 0, len(rects) if count is None else count) + b"".join(rects)


def rect(x: int, y: int, w: int, h: int, encoding: int, body: bytes = b"") -> bytes:
    return struct.pack(">HHHHi", x, y, w, h, encoding) + body


def px(value: int) -> bytes:
    """One RGBX32 wire pixel."""
    return struct.pack("<I", value)


def raw(pixels: Pixels) -> bytes:
    return np.ascontiguousarray(pixels, "<u4").tobytes()


def copy_rect(src_x: int, src_y: int) -> bytes:
    return struct.pack(">HH", src_x, src_y)


def rre(background: int, subrects: list[tuple[int, int, int, int, int]]) -> bytes:
    body = struct.pack(">I", len(subrects)) + px(background)
    for value, x, y, w, h in subrects:
        body += px(value) + struct.pack(">HHHH", x, y, w, h)
    return body


def hextile(pixels: Pixels, mode: int = 0) -> bytes:
    """Hextile with solid tiles, then per ``mode``: 0 raw tiles, 1 coloured 1-row subrects,
    2 foreground subrects when a tile has two colours (else raw)."""
    h, w = pixels.shape
    out = bytearray()
    for ty in range(0, h, 16):
        for tx in range(0, w, 16):
            tile = pixels[ty : ty + 16, tx : tx + 16]
            colours, counts = np.unique(tile, return_counts=True)
            if len(colours) == 1:
                out += b"\x02" + px(int(colours[0]))
            elif mode == 2 and len(colours) == 2:
                bg_index = int(np.argmax(counts))
                bg, fg = int(colours[bg_index]), int(colours[1 - bg_index])
                subs = _runs(tile, bg)
                out += b"\x0e" + px(bg) + px(fg) + bytes([len(subs)])
                out += b"".join(bytes([x << 4 | y, (n - 1) << 4]) for x, y, n, _ in subs)
            elif mode == 1 and len(_runs(tile, int(colours[np.argmax(counts)]))) < 256:
                bg = int(colours[np.argmax(counts)])
                subs = _runs(tile, bg)
                out += b"\x1a" + px(bg) + bytes([len(subs)])
                out += b"".join(px(v) + bytes([x << 4 | y, (n - 1) << 4]) for x, y, n, v in subs)
            else:
                out += b"\x01" + raw(tile)
    return bytes(out)


def _runs(tile: Pixels, bg: int) -> list[tuple[int, int, int, int]]:
    """Horizontal runs of non-background pixels: (x, y, length, value)."""
    runs = []
    for y, row in enumerate(tile.tolist()):
        x = 0
        while x < len(row):
            if row[x] == bg:
                x += 1
                continue
            start = x
            while x < len(row) and row[x] == row[start]:
                x += 1
            runs.append((start, y, x - start, row[start]))
    return runs


def cpx(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


def zrle(pixels: Pixels, stream: zlib._Compress, mode: int = 0) -> bytes:
    """ZRLE: solid tiles; then per ``mode``: 0 packed palette / raw, 1 plain RLE,
    2 palette RLE."""
    h, w = pixels.shape
    data = bytearray()
    for ty in range(0, h, 64):
        for tx in range(0, w, 64):
            data += _zrle_tile(pixels[ty : ty + 64, tx : tx + 64], mode)
    compressed = stream.compress(bytes(data)) + stream.flush(zlib.Z_SYNC_FLUSH)
    return struct.pack(">I", len(compressed)) + compressed


def _zrle_tile(tile: Pixels, mode: int) -> bytes:
    colours = np.unique(tile)
    flat = tile.reshape(-1).tolist()
    if len(colours) == 1:
        return b"\x01" + cpx(int(colours[0]))
    if mode == 1:
        return b"\x80" + b"".join(cpx(v) + _rle_length(n) for v, n in _flat_runs(flat))
    palette = {int(c): i for i, c in enumerate(colours.tolist())}
    head = b"".join(cpx(c) for c in palette)
    if mode == 2 and len(colours) <= 127:
        body = b"".join(
            bytes([palette[v]]) if n == 1 else bytes([128 | palette[v]]) + _rle_length(n)
            for v, n in _flat_runs(flat)
        )
        return bytes([128 + len(colours)]) + head + body
    if len(colours) <= 16:
        bits = 1 if len(colours) == 2 else 2 if len(colours) <= 4 else 4
        index = np.vectorize(palette.__getitem__, otypes=[np.uint8])(tile)
        rows = b""
        for row in index:
            acc, nbits, line = 0, 0, bytearray()
            for i in row.tolist():
                acc, nbits = acc << bits | i, nbits + bits
                if nbits == 8:
                    line.append(acc)
                    acc, nbits = 0, 0
            if nbits:
                line.append(acc << (8 - nbits))
            rows += bytes(line)
        return bytes([len(colours)]) + head + rows
    return b"\x00" + b"".join(cpx(v) for v in flat)


def _flat_runs(flat: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for v in flat:
        if runs and runs[-1][0] == v:
            runs[-1] = (v, runs[-1][1] + 1)
        else:
            runs.append((v, 1))
    return runs


def _rle_length(n: int) -> bytes:
    n -= 1
    return b"\xff" * (n // 255) + bytes([n % 255])


def compact_length(n: int) -> bytes:
    out = bytearray([n & 0x7F])
    if n > 0x7F:
        out[0] |= 0x80
        out.append((n >> 7) & 0x7F)
        if n > 0x3FFF:
            out[1] |= 0x80
            out.append(n >> 14)
    return bytes(out)


def tight(pixels: Pixels, streams: list[zlib._Compress], mode: int = 0) -> bytes:
    """Tight: fill for one colour; 0 copy filter; 1 palette filter; 2 gradient filter."""
    h, w = pixels.shape
    colours = np.unique(pixels)
    rgb = pixels.reshape(-1).view(np.uint8).reshape(-1, 4)[:, :3]
    if len(colours) == 1:
        return b"\x80" + bytes(rgb[0])
    if mode == 1 and len(colours) <= 256:
        palette = {int(c): i for i, c in enumerate(colours.tolist())}
        index = np.vectorize(palette.__getitem__, otypes=[np.uint8])(pixels)
        data = np.packbits(index, axis=1).tobytes() if len(colours) == 2 else index.tobytes()
        head = bytes([0x40 | 0x10, 1, len(colours) - 1])  # stream 1, explicit palette filter
        head += b"".join(px(c)[:3] for c in palette)
        return head + _tight_data(data, streams[1])
    if mode == 2:
        return bytes([0x40 | 0x20, 2]) + _tight_data(_gradient_encode(rgb, w, h), streams[2])
    return b"\x00" + _tight_data(rgb.tobytes(), streams[0])


def _gradient_encode(rgb: npt.NDArray[np.uint8], w: int, h: int) -> bytes:
    img = rgb.reshape(h, w, 3).astype(np.int32)
    pad = np.zeros((h + 1, w + 1, 3), np.int32)
    pad[1:, 1:] = img
    est = np.clip(pad[1:, :-1] + pad[:-1, 1:] - pad[:-1, :-1], 0, 255)
    diff: bytes = ((img - est) & 255).astype(np.uint8).tobytes()
    return diff


def _tight_data(data: bytes, stream: zlib._Compress) -> bytes:
    if len(data) < 12:
        return data
    compressed = stream.compress(data) + stream.flush(zlib.Z_SYNC_FLUSH)
    return compact_length(len(compressed)) + compressed
