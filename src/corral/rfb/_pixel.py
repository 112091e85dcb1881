"""Pixel formats and conversion of wire pixels to the framebuffer's RGBX words.

The framebuffer stores one ``uint32`` per pixel whose little-endian bytes are R, G, B, 0, so a
``(h, w)`` uint32 array viewed as ``(h, w, 4)`` uint8 gives RGB in the first three channels. The
default client pixel format (``RGBX32``) is that exact layout: raw pixels need no conversion.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._errors import LocalProtocolError, RemoteProtocolError

U32Array = npt.NDArray[np.uint32]
U8Array = npt.NDArray[np.uint8]

_PIXEL_FORMAT = struct.Struct(">BBBBHHHBBBxxx")


@dataclass(frozen=True, slots=True)
class PixelFormat:
    """An RFB PIXEL_FORMAT (RFC 6143 §7.4)."""

    bits_per_pixel: int
    depth: int
    big_endian: bool
    true_colour: bool
    red_max: int
    green_max: int
    blue_max: int
    red_shift: int
    green_shift: int
    blue_shift: int

    @classmethod
    def from_bytes(cls, data: bytes) -> PixelFormat:
        bpp, depth, be, tc, rm, gm, bm, rs, gs, bs = _PIXEL_FORMAT.unpack(data)
        return cls(bpp, depth, be != 0, tc != 0, rm, gm, bm, rs, gs, bs)

    def to_bytes(self) -> bytes:
        return _PIXEL_FORMAT.pack(
            self.bits_per_pixel,
            self.depth,
            int(self.big_endian),
            int(self.true_colour),
            self.red_max,
            self.green_max,
            self.blue_max,
            self.red_shift,
            self.green_shift,
            self.blue_shift,
        )

    @property
    def bytes_per_pixel(self) -> int:
        return self.bits_per_pixel // 8

    def validate_for_client(self) -> None:
        """Refuse formats this client cannot decode (it only asks for true colour)."""
        ok_bpp = self.bits_per_pixel in (8, 16, 32)
        maxes = (self.red_max, self.green_max, self.blue_max)
        shifts = (self.red_shift, self.green_shift, self.blue_shift)
        fits = all(
            m > 0 and (m & (m + 1)) == 0 and s + m.bit_length() <= self.bits_per_pixel
            for m, s in zip(maxes, shifts, strict=True)
        )
        if not (ok_bpp and self.true_colour and fits and self.depth <= self.bits_per_pixel):
            raise LocalProtocolError(
                f"pixel format {self} is not supported: use a true-colour format of 8, 16 or "
                "32 bits per pixel whose channel maxima are 2**n-1 and fit in the pixel"
            )

    @property
    def is_rgbx32(self) -> bool:
        return self == RGBX32

    # --- raw pixels -------------------------------------------------------------------------
    def _dtype(self) -> str:
        order = ">" if self.big_endian else "<"
        return {8: "u1", 16: order + "u2", 32: order + "u4"}[self.bits_per_pixel]

    def values_to_rgbx(self, values: npt.NDArray[np.unsignedinteger]) -> U32Array:
        """Convert pixel values (native integers) to RGBX words."""
        v = values.astype(np.uint32, copy=False)
        out = np.zeros(v.shape, np.uint32)
        for shift, cmax, dst in (
            (self.red_shift, self.red_max, 0),
            (self.green_shift, self.green_max, 8),
            (self.blue_shift, self.blue_max, 16),
        ):
            c = (v >> np.uint32(shift)) & np.uint32(cmax)
            if cmax != 255:
                c = (c * np.uint32(255) + np.uint32(cmax // 2)) // np.uint32(cmax)
            out |= c << np.uint32(dst)
        return out

    def pixels_to_rgbx(self, data: bytes | U8Array, count: int) -> U32Array:
        """Decode ``count`` wire pixels (``bytes_per_pixel`` each) to RGBX words."""
        raw = _as_u8(data, count * self.bytes_per_pixel)
        if self.is_rgbx32:
            return raw.view(np.uint32) & np.uint32(0x00FFFFFF)
        return self.values_to_rgbx(raw.view(self._dtype()))

    # --- ZRLE CPIXEL ------------------------------------------------------------------------
    def _cpixel_pad(self) -> int | None:
        """Index of the byte a 3-byte CPIXEL omits from a 4-byte pixel, or None."""
        if self.bits_per_pixel != 32 or self.depth > 24:
            return None
        top = max(
            s + m.bit_length()
            for s, m in (
                (self.red_shift, self.red_max),
                (self.green_shift, self.green_max),
                (self.blue_shift, self.blue_max),
            )
        )
        low = min(self.red_shift, self.green_shift, self.blue_shift)
        if top <= 24:  # fits in the least significant three bytes
            return 0 if self.big_endian else 3
        if low >= 8:  # fits in the most significant three bytes
            return 3 if self.big_endian else 0
        return None

    @property
    def cpixel_size(self) -> int:
        return 3 if self._cpixel_pad() is not None else self.bytes_per_pixel

    def cpixels_to_rgbx(self, data: bytes | U8Array, count: int) -> U32Array:
        pad = self._cpixel_pad()
        if pad is None:
            return self.pixels_to_rgbx(data, count)
        raw = _as_u8(data, count * 3).reshape(count, 3)
        full = np.zeros((count, 4), np.uint8)
        cols = [i for i in range(4) if i != pad]
        full[:, cols] = raw
        return self.pixels_to_rgbx(full.reshape(-1), count)

    # --- Tight TPIXEL -----------------------------------------------------------------------
    @property
    def tpixel_is_rgb24(self) -> bool:
        return (
            self.bits_per_pixel == 32
            and self.depth == 24
            and self.red_max == self.green_max == self.blue_max == 255
        )

    @property
    def tpixel_size(self) -> int:
        return 3 if self.tpixel_is_rgb24 else self.bytes_per_pixel

    def tpixels_to_rgbx(self, data: bytes | U8Array, count: int) -> U32Array:
        if not self.tpixel_is_rgb24:
            return self.pixels_to_rgbx(data, count)
        return rgb24_to_rgbx(_as_u8(data, count * 3).reshape(count, 3))


def rgb24_to_rgbx(rgb: U8Array) -> U32Array:
    """Pack an ``(..., 3)`` uint8 RGB array into RGBX words."""
    shape = rgb.shape[:-1]
    full = np.zeros((*shape, 4), np.uint8)
    full[..., :3] = rgb
    return full.view(np.uint32).reshape(shape)


def _as_u8(data: bytes | U8Array, size: int) -> U8Array:
    arr = data.reshape(-1) if isinstance(data, np.ndarray) else np.frombuffer(data, np.uint8)
    if arr.size < size:
        raise RemoteProtocolError(f"pixel data is {arr.size} bytes, {size} expected")
    return np.ascontiguousarray(arr[:size])


# The client's default format: bytes R, G, B, pad in memory — the framebuffer's own layout.
RGBX32 = PixelFormat(32, 24, False, True, 255, 255, 255, 0, 8, 16)
BGR233 = PixelFormat(8, 8, False, True, 7, 7, 3, 0, 3, 6)
RGB565 = PixelFormat(16, 16, False, True, 31, 63, 31, 11, 5, 0)
