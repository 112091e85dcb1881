"""Pseudo-encodings that carry data: Cursor and ExtendedDesktopSize."""

from __future__ import annotations

import numpy as np

from ._events import CursorShape, DesktopResized, Screen
from ._limits import Limits
from ._pixel import PixelFormat
from ._reader import Reader


def decode_cursor(
    r: Reader, pf: PixelFormat, limits: Limits, x: int, y: int, w: int, h: int
) -> CursorShape:
    """Cursor pseudo-encoding: pixels then a 1-bit mask; hotspot in the rect's x, y."""
    limits.check(max(w, h), limits.max_cursor_size, "a cursor side", "max_cursor_size")
    pixels = r.take(w * h * pf.bytes_per_pixel)
    mask_row = (w + 7) // 8
    mask = r.take(mask_row * h)
    rgba = np.zeros((h, w, 4), np.uint8)
    if w and h:
        rgbx = pf.pixels_to_rgbx(pixels, w * h).reshape(h, w)
        rgba[:] = rgbx.view(np.uint8).reshape(h, w, 4)
        bits = np.unpackbits(np.frombuffer(mask, np.uint8).reshape(h, mask_row), axis=1)
        rgba[:, :, 3] = bits[:, :w] * 255
    return CursorShape(min(x, max(w - 1, 0)), min(y, max(h - 1, 0)), rgba)


def decode_extended_desktop_size(r: Reader, x: int, y: int, w: int, h: int) -> DesktopResized:
    count = r.u8()
    r.skip(3)
    screens = []
    for _ in range(count):
        sid = r.u32()
        sx, sy, sw, sh = r.u16(), r.u16(), r.u16(), r.u16()
        flags = r.u32()
        screens.append(Screen(sid, sx, sy, sw, sh, flags))
    return DesktopResized(w, h, tuple(screens), reason=x, status=y)
