"""Encoding of client-to-server messages."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from ._clipboard import provide_text
from ._errors import LocalProtocolError
from ._events import (
    ClientCutText,
    FramebufferUpdateRequest,
    KeyEvent,
    Message,
    PointerEvent,
    QEMUKeyEvent,
    SetEncodings,
)
from ._pixel import PixelFormat

if TYPE_CHECKING:
    from ._updates import UpdateParser


def set_pixel_format(pf: PixelFormat) -> bytes:
    return b"\x00\x00\x00\x00" + pf.to_bytes()


def set_encodings(encodings: tuple[int, ...]) -> bytes:
    return struct.pack(f">BxH{len(encodings)}i", 2, len(encodings), *encodings)


def encode_message(message: Message, updates: UpdateParser) -> bytes:
    """Bytes for ``message``; raises ``LocalProtocolError`` for values out of range."""
    try:
        return _encode(message, updates)
    except struct.error as exc:
        raise LocalProtocolError(f"{message} has a value out of range: {exc}") from None


def _encode(m: Message, updates: UpdateParser) -> bytes:
    if isinstance(m, FramebufferUpdateRequest):
        return struct.pack(">BBHHHH", 3, int(m.incremental), m.x, m.y, m.width, m.height)
    if isinstance(m, KeyEvent):
        return struct.pack(">BBxxI", 4, int(m.down), m.keysym)
    if isinstance(m, QEMUKeyEvent):
        if not updates.qemu_key_events:
            raise LocalProtocolError(
                "the server did not confirm QEMU extended key events; send KeyEvent instead"
            )
        return struct.pack(">BBHII", 255, 0, int(m.down), m.keysym, m.keycode)
    if isinstance(m, PointerEvent):
        return struct.pack(">BBHH", 5, m.buttons, m.x, m.y)
    if isinstance(m, SetEncodings):
        return set_encodings(m.encodings)
    if isinstance(m, ClientCutText):
        if updates.clipboard_caps is not None:
            return provide_text(m.text)
        try:
            data = m.text.encode("latin-1")
        except UnicodeEncodeError:
            raise LocalProtocolError(
                "the server has no extended clipboard, and classic clipboard text must be Latin-1"
            ) from None
        return struct.pack(">BxxxI", 6, len(data)) + data
    raise LocalProtocolError(f"{type(m).__name__} is not a client message")
