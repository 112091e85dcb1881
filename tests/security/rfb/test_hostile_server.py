"""Hostile servers, one per bug class of published VNC-client CVEs (LibVNC, TigerVNC, TightVNC,
UltraVNC). Each must end in a specific ``corral.rfb`` error — a ``RemoteProtocolError`` subclass
(``LimitExceeded`` is one) or a timeout — with bounded time and memory."""

from __future__ import annotations

import asyncio
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from corral.rfb import (
    BGR233,
    Encoding,
    InvalidEncodingData,
    InvalidRectangle,
    LimitExceeded,
    Limits,
    RemoteProtocolError,
    RFBClient,
    RFBError,
    RFBTimeout,
    TruncatedStream,
    UnsupportedServer,
)
from tests.security.rfb._hostile import hostile_server, peak_memory, play
from tests.unit.rfb import _wire as wire

ALL = tuple(int(e) for e in Encoding)
MiB = 1 << 20


async def _outcome(
    tmp_path: Path, *chunks: bytes, close: bool = False, **options: Any
) -> tuple[RFBError, int]:
    """Connect, take a screenshot; return the error it ended with and the memory peak."""
    options.setdefault("encodings", ALL)
    with peak_memory() as peak:
        async with hostile_server(tmp_path, play(*chunks, close=close)) as path:
            with pytest.raises(RFBError) as info:
                client = await RFBClient.connect_unix(path, timeout=5, **options)
                async with client:
                    for _ in range(3):
                        await client.screenshot(timeout=5)
    return info.value, peak[0]


def _init(w: int = 64, h: int = 48) -> bytes:
    return wire.handshake(w, h)


def _one(x: int, y: int, w: int, h: int, encoding: int, body: bytes = b"") -> bytes:
    return wire.update(wire.rect(x, y, w, h, encoding, body))


# --- sizes that overflow ----------------------------------------------------------------------
@pytest.mark.parametrize("size", [(65535, 65535), (8193, 2), (8000, 8000)])
async def test_framebuffer_size_that_overflows(tmp_path: Path, size: tuple[int, int]) -> None:
    err, peak = await _outcome(tmp_path, wire.handshake(*size))
    assert isinstance(err, LimitExceeded) and "framebuffer" in err.message
    assert peak < 16 * MiB


async def test_desktop_resize_that_overflows(tmp_path: Path) -> None:
    err, peak = await _outcome(tmp_path, _init(), _one(0, 0, 65535, 65535, Encoding.DESKTOP_SIZE))
    assert isinstance(err, LimitExceeded)
    assert peak < 16 * MiB


async def test_extended_desktop_resize_that_overflows(tmp_path: Path) -> None:
    body = b"\x01\0\0\0" + struct.pack(">IHHHHI", 0, 0, 0, 65535, 65535, 0)
    err, _ = await _outcome(
        tmp_path, _init(), _one(0, 0, 65535, 65535, Encoding.EXTENDED_DESKTOP_SIZE, body)
    )
    assert isinstance(err, LimitExceeded)


# --- length fields of 0xFFFFFFFF --------------------------------------------------------------
@pytest.mark.parametrize(
    ("stream", "error"),
    [
        (b"RFB 003.008\n\x00" + b"\xff\xff\xff\xff", LimitExceeded),  # failure reason
        (b"RFB 003.003\n\0\0\0\0" + b"\xff\xff\xff\xff", LimitExceeded),
        (wire.handshake(8, 8, b"")[:-4] + b"\xff\xff\xff\xff", LimitExceeded),  # desktop name
        (_init() + b"\x03\0\0\0\x7f\xff\xff\xff" + b"A" * 1000, LimitExceeded),  # cut text
        (_init() + b"\x03\0\0\0\xff\xff\xff\xff\0", InvalidEncodingData),  # -1: extended
        (_init() + _one(0, 0, 8, 8, Encoding.ZLIB, b"\xff\xff\xff\xff"), LimitExceeded),
        (_init() + _one(0, 0, 8, 8, Encoding.ZRLE, b"\xff\xff\xff\xff"), LimitExceeded),
        (_init() + _one(0, 0, 8, 8, Encoding.RRE, b"\xff\xff\xff\xff"), LimitExceeded),
        (_init() + b"\x01\0\0\0\xff\xff" + b"\0" * 100, TruncatedStream),  # colour map
    ],
    ids=["reason", "reason-3.3", "name", "cut-text", "cut-text-neg", "zlib", "zrle", "rre",
         "colour-map"],
)  # fmt: skip
async def test_length_fields_of_0xffffffff(
    tmp_path: Path, stream: bytes, error: type[RFBError]
) -> None:
    close = error is TruncatedStream
    err, peak = await _outcome(tmp_path, stream, close=close)
    assert isinstance(err, error), err
    assert peak < 16 * MiB


# --- rectangles and CopyRect sources outside the framebuffer ----------------------------------
@pytest.mark.parametrize(
    "message",
    [
        _one(60, 0, 8, 8, Encoding.RAW, b"\0" * 256),
        _one(65535, 65535, 65535, 65535, Encoding.RAW),
        _one(0, 0, 8, 8, Encoding.COPY_RECT, wire.copy_rect(60, 0)),
        _one(0, 0, 8, 8, Encoding.COPY_RECT, wire.copy_rect(65535, 65535)),
        _one(0, 0, 8, 8, Encoding.RRE, wire.rre(0, [(1, 4, 4, 8, 8)])),
        _one(0, 0, 8, 8, Encoding.HEXTILE, b"\x1a" + wire.px(0) + b"\x01" + wire.px(1) + b"\x77\x77"),  # noqa: E501
        _one(0, 0, 16, 16, Encoding.HEXTILE, b"\x0e" + wire.px(0) + wire.px(1) + b"\x01\xff\xff"),
    ],
    ids=["raw", "raw-wrap", "copyrect", "copyrect-wrap", "rre-subrect", "hextile-subrect",
         "hextile-fg-subrect"],
)  # fmt: skip
async def test_rectangles_outside_the_framebuffer(tmp_path: Path, message: bytes) -> None:
    err, _ = await _outcome(tmp_path, _init(), message)
    assert isinstance(err, InvalidRectangle), err


# --- Tight palettes, gradient at 8 bpp --------------------------------------------------------
@pytest.mark.parametrize(
    ("palette_byte", "index", "ok"),
    [(0, 0, True), (0, 1, False), (255, 255, True), (255, 0, True), (2, 3, False)],
)
async def test_tight_palette_sizes(tmp_path: Path, palette_byte: int, index: int, ok: bool) -> None:
    colours = palette_byte + 1
    data = bytes([index]) * 16  # 4x4 pixels, 8-bit indices (2 colours would be 1-bit rows)
    if colours == 2:
        data = bytes([0x80 if index else 0]) * 4
    z = zlib.compressobj()
    payload = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    body = bytes([0x40, 1, palette_byte]) + b"\x10\x20\x30" * colours
    body += data if len(data) < 12 else wire.compact_length(len(payload)) + payload
    stream = _init() + _one(0, 0, 4, 4, Encoding.TIGHT, body)
    if ok:
        async with (
            hostile_server(tmp_path, play(stream)) as path,
            await RFBClient.connect_unix(path, encodings=ALL, timeout=5) as client,
        ):
            img = await client.screenshot(timeout=5)
        assert (img[:4, :4] == (0x10, 0x20, 0x30)).all()
    else:
        err, _ = await _outcome(tmp_path, stream)
        assert isinstance(err, InvalidEncodingData) and "palette" in err.message


async def test_tight_gradient_filter_at_8bpp(tmp_path: Path) -> None:
    body = bytes([0x40, 2]) + b"\0" * 4  # 2x2 pixels, 1 byte each: sent uncompressed
    err, _ = await _outcome(
        tmp_path, _init(), _one(0, 0, 2, 2, Encoding.TIGHT, body), pixel_format=BGR233
    )
    assert isinstance(err, InvalidEncodingData) and "gradient" in err.message


# --- zlib bombs -------------------------------------------------------------------------------
def _bomb(size: int) -> bytes:
    z = zlib.compressobj(9)
    chunk = b"\0" * MiB
    out = b"".join(z.compress(chunk) for _ in range(size // MiB))
    return out + z.flush(zlib.Z_SYNC_FLUSH)


@pytest.mark.parametrize("encoding", [Encoding.ZLIB, Encoding.ZRLE, Encoding.TIGHT])
async def test_zlib_bomb(tmp_path: Path, encoding: int) -> None:
    payload = _bomb(256 * MiB)  # ~256 KiB on the wire
    if encoding == Encoding.TIGHT:
        body = b"\x00" + wire.compact_length(len(payload)) + payload
    else:
        body = struct.pack(">I", len(payload)) + payload
    err, peak = await _outcome(tmp_path, _init(), _one(0, 0, 64, 48, encoding, body))
    assert isinstance(err, InvalidEncodingData | LimitExceeded), err
    assert peak < 32 * MiB


async def test_many_honest_rects_exceed_the_decompressed_budget(tmp_path: Path) -> None:
    z = zlib.compressobj()
    rects = []
    for _ in range(40):
        data = z.compress(b"\x11" * 64 * 48 * 4) + z.flush(zlib.Z_SYNC_FLUSH)
        rects.append(wire.rect(0, 0, 64, 48, Encoding.ZLIB, struct.pack(">I", len(data)) + data))
    limits = Limits(max_decompressed_bytes_per_update=MiB // 4)
    err, _ = await _outcome(tmp_path, _init(), wire.update(*rects), limits=limits)
    assert isinstance(err, LimitExceeded) and "decompression" in err.message


# --- ZRLE tiles running past the end ----------------------------------------------------------
def _zrle(data: bytes) -> bytes:
    z = zlib.compressobj()
    payload = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    return struct.pack(">I", len(payload)) + payload


@pytest.mark.parametrize(
    "tile",
    [
        b"\x00" + b"\x01\x02\x03" * 10,  # raw tile with too few pixels
        b"\x80" + b"\x01\x02\x03" + b"\xff" * 40 + b"\x00",  # run longer than the tile
        b"\x82" + b"\x01\x02\x03\x04\x05\x06" + b"\x85\x00",  # palette index past the palette
        b"\x02" + b"\x01\x02\x03\x04\x05\x06" + b"\xff",  # packed rows cut short
        b"\x11",  # unused subencoding
        b"\x01\x01\x02\x03" + b"junk",  # trailing bytes after the last tile
    ],
    ids=["raw-short", "rle-long", "palette-index", "packed-short", "bad-type", "trailing"],
)
async def test_zrle_tiles_running_past_the_end(tmp_path: Path, tile: bytes) -> None:
    err, _ = await _outcome(tmp_path, _init(), _one(0, 0, 8, 8, Encoding.ZRLE, _zrle(tile)))
    assert isinstance(err, InvalidEncodingData), err


# --- huge cursors -----------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(65535, 65535), (513, 1), (1, 4096)])
async def test_huge_cursor(tmp_path: Path, size: tuple[int, int]) -> None:
    err, peak = await _outcome(tmp_path, _init(), _one(0, 0, *size, Encoding.CURSOR))
    assert isinstance(err, LimitExceeded) and "cursor" in err.message
    assert peak < 16 * MiB


# --- truncated streams ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "stream",
    [
        b"RFB 003.0",
        wire.handshake(8, 8)[:30],
        _init() + _one(0, 0, 64, 48, Encoding.RAW, b"\0" * 1000),
        _init() + _one(0, 0, 64, 48, Encoding.HEXTILE, b"\x02" + wire.px(5)),
        _init() + b"\x00\x00\x00\x02" + wire.rect(0, 0, 1, 1, Encoding.RAW, b"\0" * 4),
    ],
    ids=["version", "server-init", "raw", "hextile", "rect-count"],
)
async def test_truncated_streams(tmp_path: Path, stream: bytes) -> None:
    err, _ = await _outcome(tmp_path, stream, close=True)
    assert isinstance(err, TruncatedStream), err


# --- a server that never stops sending, or never sends ----------------------------------------
async def test_endless_update_without_last_rect(tmp_path: Path) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_init() + b"\x00\x00\xff\xff")  # "rectangles until LastRect"
        one = wire.rect(0, 0, 1, 1, Encoding.RAW, b"\0" * 4) * 1000
        while True:
            writer.write(one)
            await writer.drain()

    limits = Limits(max_rects_per_update=10000)
    with peak_memory() as peak:
        async with hostile_server(tmp_path, script) as path:
            with pytest.raises(LimitExceeded, match="rectangles"):
                async with await RFBClient.connect_unix(path, encodings=ALL, limits=limits) as c:
                    await c.screenshot(timeout=10)
    assert peak[0] < 16 * MiB


async def test_endless_stream_of_small_messages_keeps_memory_bounded(tmp_path: Path) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_init())
        while True:  # bells forever, never the requested update
            writer.write(b"\x02" * 65536)
            await writer.drain()

    with peak_memory() as peak:
        async with (
            hostile_server(tmp_path, script) as path,
            await RFBClient.connect_unix(path, encodings=ALL) as client,
        ):
            with pytest.raises(RFBTimeout):
                await client.screenshot(timeout=1)
            assert client.bells > 65536
    assert peak[0] < 16 * MiB


async def test_endless_clipboard_text(tmp_path: Path) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_init() + struct.pack(">Bxxxi", 3, 0x7FFF_FFFF))
        while True:
            writer.write(b"A" * 65536)
            await writer.drain()

    with peak_memory() as peak:
        async with hostile_server(tmp_path, script) as path:
            with pytest.raises(LimitExceeded, match="clipboard"):
                async with await RFBClient.connect_unix(path, encodings=ALL) as client:
                    await client.screenshot(timeout=5)
    assert peak[0] < 16 * MiB


async def test_server_that_never_answers(tmp_path: Path) -> None:
    async with hostile_server(tmp_path, play(b"RFB 003.008\n")) as path:
        with pytest.raises(RFBTimeout, match="handshake"):
            await RFBClient.connect_unix(path, timeout=0.5)


async def test_overlapping_subrects_exhaust_the_paint_budget(tmp_path: Path) -> None:
    subrect = wire.px(1) + struct.pack(">HHHH", 0, 0, 64, 48)
    body = struct.pack(">I", 200_000) + wire.px(0) + subrect * 200_000
    limits = Limits(max_painted_pixels_per_update=10 * 64 * 48)
    err, _ = await _outcome(
        tmp_path, _init(), _one(0, 0, 64, 48, Encoding.RRE, body), limits=limits
    )
    assert isinstance(err, LimitExceeded) and "paint" in err.message


# --- protocol confusion -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stream", "options", "error"),
    [
        (b"SSH-2.0-Open", {}, UnsupportedServer),
        (b"RFB 002.000\n", {}, UnsupportedServer),
        (b"RFB 003.008\n\x01\x10", {}, UnsupportedServer),  # only an unknown type
        (_init() + b"\x99", {}, UnsupportedServer),  # unknown message type
        (_init() + _one(0, 0, 1, 1, Encoding.TIGHT, b"\x80\0\0\0"), {"encodings": (0,)},
         UnsupportedServer),  # an encoding the client did not ask for
        (_init() + _one(0, 0, 4, 4, Encoding.TIGHT, b"\xc0"), {}, InvalidEncodingData),
        (_init() + _one(0, 0, 4, 4, Encoding.TIGHT, b"\x90\x05" + b"notajpeg"), {},
         InvalidEncodingData),
    ],
    ids=["not-rfb", "old-version", "no-security", "message-type", "unrequested", "tight-type",
         "bad-jpeg"],
)  # fmt: skip
async def test_protocol_confusion(
    tmp_path: Path, stream: bytes, options: dict[str, Any], error: type[RFBError]
) -> None:
    err, _ = await _outcome(tmp_path, stream, **options)
    assert isinstance(err, error), err
    assert isinstance(err, RemoteProtocolError)


async def test_truncated_jpeg_in_tight(tmp_path: Path) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="JPEG")
    jpeg = buf.getvalue()[:-40]
    body = b"\x90" + wire.compact_length(len(jpeg)) + jpeg
    err, _ = await _outcome(tmp_path, _init(), _one(0, 0, 8, 8, Encoding.TIGHT, body))
    assert isinstance(err, InvalidEncodingData), err
