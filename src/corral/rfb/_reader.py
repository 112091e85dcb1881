"""Parsing helpers shared by the state machine and the decoders."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from ._batch import TileCache
from ._errors import InvalidEncodingData, LimitExceeded
from ._framebuffer import Framebuffer
from ._limits import Limits
from ._pixel import PixelFormat

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_S32 = struct.Struct(">i")
_U32LE = struct.Struct("<I")


class NeedData(Exception):
    """Internal: the buffer ends before the current message does (never escapes the package)."""


class Reader:
    """A cursor over the receive buffer; reads raise ``NeedData`` when bytes are missing.

    Nothing is consumed from the buffer until the owner commits ``pos`` after a whole step,
    so a step that runs out of data is simply retried when more bytes arrive.
    """

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytearray, pos: int) -> None:
        self.buf = buf
        self.pos = pos

    def available(self) -> int:
        return len(self.buf) - self.pos

    def need(self, n: int) -> None:
        if self.pos + n > len(self.buf):
            raise NeedData

    def u8(self) -> int:
        self.need(1)
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def u16(self) -> int:
        self.need(2)
        (v,) = _U16.unpack_from(self.buf, self.pos)
        self.pos += 2
        return int(v)

    def u32(self) -> int:
        self.need(4)
        (v,) = _U32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(v)

    def s32(self) -> int:
        self.need(4)
        (v,) = _S32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(v)

    def take(self, n: int) -> bytes:
        self.need(n)
        data = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        self.need(n)
        self.pos += n


@dataclass(slots=True)
class DecodeContext:
    """Per-connection decoding state: framebuffer, format, limits and zlib streams."""

    framebuffer: Framebuffer
    pixel_format: PixelFormat
    limits: Limits
    zlib_stream: zlib._Decompress = field(default_factory=zlib.decompressobj)
    zrle_stream: zlib._Decompress = field(default_factory=zlib.decompressobj)
    tight_streams: list[zlib._Decompress] = field(
        default_factory=lambda: [zlib.decompressobj() for _ in range(4)]
    )
    decompressed: int = 0
    _colours: dict[bytes, int] = field(default_factory=dict)
    cpixel_size: int = field(init=False)
    tile_cache: TileCache = field(init=False)
    read_colour: Callable[[bytes | bytearray, int], int] = field(init=False)
    read_ccolour: Callable[[bytes | bytearray, int], int] = field(init=False)

    def __post_init__(self) -> None:
        self.cpixel_size = self.pixel_format.cpixel_size
        self.tile_cache = TileCache()
        self.read_colour = self._read_rgbx32 if self.pixel_format.is_rgbx32 else self._read_any
        self.read_ccolour = (
            self._read_rgb24 if self.pixel_format.cpixel_size == 3 and self.pixel_format.is_rgbx32
            else self._read_any_c
        )  # fmt: skip

    # Single pixel values as RGBX words, from a wire pixel at ``buf[pos]``.
    @staticmethod
    def _read_rgbx32(buf: bytes | bytearray, pos: int) -> int:
        return int(_U32LE.unpack_from(buf, pos)[0]) & 0xFFFFFF

    @staticmethod
    def _read_rgb24(buf: bytes | bytearray, pos: int) -> int:
        return buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16

    def _read_any(self, buf: bytes | bytearray, pos: int) -> int:
        wire = bytes(buf[pos : pos + self.pixel_format.bytes_per_pixel])
        value = self._colours.get(wire)
        if value is None:
            if len(self._colours) > 4096:
                self._colours.clear()
            value = self._colours[wire] = int(self.pixel_format.pixels_to_rgbx(wire, 1)[0])
        return value

    def _read_any_c(self, buf: bytes | bytearray, pos: int) -> int:
        wire = bytes(buf[pos : pos + self.pixel_format.cpixel_size])
        key = b"c" + wire
        value = self._colours.get(key)
        if value is None:
            if len(self._colours) > 4096:
                self._colours.clear()
            value = self._colours[key] = int(self.pixel_format.cpixels_to_rgbx(wire, 1)[0])
        return value

    def start_update(self) -> None:
        self.decompressed = 0
        self.framebuffer.start_update()

    def charge_decompressed(self, n: int) -> None:
        self.decompressed += n
        limit = self.limits.max_decompressed_bytes_per_update
        if self.decompressed > limit:
            raise LimitExceeded(
                f"server data expanded to more than {limit} bytes in one update (a "
                "decompression bomb?); raise Limits.max_decompressed_bytes_per_update if this "
                "server is trusted"
            )

    def inflate(self, stream: zlib._Decompress, data: bytes, size: int, exact: bool) -> bytes:
        """Decompress at most ``size`` bytes (exactly ``size`` if ``exact``) from a stream.

        Output beyond ``size`` is never produced: a zlib bomb stops at the bound.
        """
        self.charge_decompressed(size)
        try:
            out = stream.decompress(data, size + 1)
        except zlib.error as exc:
            raise InvalidEncodingData(f"server sent a corrupt zlib stream: {exc}") from None
        if len(out) > size or stream.unconsumed_tail:
            raise InvalidEncodingData(
                f"server's compressed data expands to more than the {size} bytes it may hold"
            )
        if exact and len(out) != size:
            raise InvalidEncodingData(
                f"server's compressed data expands to {len(out)} bytes, {size} expected"
            )
        return out


def check_compressed_length(limits: Limits, n: int) -> None:
    limits.check(
        n, limits.max_compressed_rect_bytes, "a compressed rectangle", "max_compressed_rect_bytes"
    )
