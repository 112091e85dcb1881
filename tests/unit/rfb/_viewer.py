"""Viewer-side RFB bytes, as noVNC 1.7 writes them (``core/rfb.js``, ``RFB.messages``).

For the relay's tests and the fuzz seeds: the handshake answers and every client message a
viewer may send, encoded independently of ``corral.rfb``'s reader.
"""

from __future__ import annotations

import struct
import zlib

# noVNC's _sendEncodings() at depth 24, in its order (H.264 only where WebCodecs decode it):
# CopyRect, Tight, TightPNG, ZRLE, JPEG, Hextile, RRE, Zlib, Raw, quality level 6,
# compression level 2, DesktopSize, LastRect, QEMU extended key event, QEMU LED state,
# ExtendedDesktopSize, XVP, Fence, ContinuousUpdates, DesktopName, Extended Clipboard
# (0xC0A1E5CE), ExtendedMouseButtons, VMware cursor (0x574D5664), Cursor.
NOVNC_ENCODINGS = (
    1, 7, -260, 16, 21, 5, 2, 6, 0, -32 + 6, -256 + 2, -223, -224, -258, -261, -308, -309,
    -312, -313, -307, -1063131698, -316, 0x574D5664, -239,
)  # fmt: skip

# Extended Clipboard flags (noVNC's extendedClipboard* constants).
TEXT = 1
CAPS, REQUEST, PEEK, NOTIFY, PROVIDE = (1 << 24, 1 << 25, 1 << 26, 1 << 27, 1 << 28)


def pixel_format_24() -> bytes:
    """RFB.messages.pixelFormat(sock, 24, true): 32 bpp, depth 24, little endian, 8-bit RGB."""
    return struct.pack(">BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255, 0, 8, 16)


def set_encodings(encodings: tuple[int, ...] = NOVNC_ENCODINGS) -> bytes:
    return struct.pack(f">BxH{len(encodings)}i", 2, len(encodings), *encodings)


def update_request(incremental: bool, x: int, y: int, w: int, h: int) -> bytes:
    return struct.pack(">BBHHHH", 3, int(incremental), x, y, w, h)


def novnc_first_messages(width: int, height: int) -> bytes:
    """What noVNC sends right after ServerInit (_negotiateServerInit)."""
    return pixel_format_24() + set_encodings() + update_request(False, 0, 0, width, height)


def key(keysym: int, down: bool) -> bytes:
    return struct.pack(">BBxxI", 4, int(down), keysym)


def qemu_key(keysym: int, down: bool, keycode: int) -> bytes:
    """RFB.messages.QEMUExtendedKeyEvent: 0xE0-prefixed scancodes become 0x80 | code."""
    if keycode >> 8 == 0xE0 and keycode & 0xFF < 0x7F:
        keycode = keycode & 0xFF | 0x80
    return struct.pack(">BBHII", 255, 0, int(down), keysym, keycode)


def pointer(x: int, y: int, mask: int) -> bytes:
    return struct.pack(">BBHH", 5, mask & 0x7F, x, y)


def extended_pointer(x: int, y: int, mask: int) -> bytes:
    """RFB.messages.extendedPointerEvent: marker bit 7, buttons 8-9 in a seventh byte."""
    return struct.pack(">BBHHB", 5, mask & 0x7F | 0x80, x, y, (mask >> 7) & 0xFF)


def cut_text(text: str) -> bytes:
    data = text.encode("latin-1")
    return struct.pack(">BxxxI", 6, len(data)) + data


def extended_clipboard(actions: int, formats: int, body: bytes = b"") -> bytes:
    payload = struct.pack(">I", actions | formats) + body
    return struct.pack(">Bxxxi", 6, -len(payload)) + payload


def clipboard_caps() -> bytes:
    """noVNC's answer to the server's caps: every action, text with size 0."""
    return extended_clipboard(CAPS | REQUEST | PEEK | NOTIFY | PROVIDE, TEXT, b"\0\0\0\0")


def clipboard_provide(text: str) -> bytes:
    """RFB.messages.extendedClipboardProvide: CRLF, NUL-terminated UTF-8, zlib full flush."""
    data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode() + b"\0"
    deflater = zlib.compressobj()
    body = deflater.compress(struct.pack(">I", len(data)) + data)
    body += deflater.flush(zlib.Z_FULL_FLUSH)
    return extended_clipboard(PROVIDE, TEXT, body)


def set_desktop_size(width: int, height: int, screen_id: int = 0, flags: int = 0) -> bytes:
    """RFB.messages.setDesktopSize: one screen covering the desktop."""
    head = struct.pack(">BxHHBx", 251, width, height, 1)
    return head + struct.pack(">IHHHHI", screen_id, 0, 0, width, height, flags)


def fence(flags: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxIB", 248, flags, len(payload)) + payload


def continuous_updates(enable: bool, x: int, y: int, w: int, h: int) -> bytes:
    return struct.pack(">BBHHHH", 150, int(enable), x, y, w, h)


def xvp(code: int, version: int = 1) -> bytes:
    return struct.pack(">BxBB", 250, version, code)


def qemu_audio(operation: int, sample_format: int = 0, channels: int = 0, freq: int = 0) -> bytes:
    head = struct.pack(">BBH", 255, 1, operation)
    return head + struct.pack(">BBI", sample_format, channels, freq) if operation == 2 else head


def handshake(minor: int = 8, shared: bool = True) -> bytes:
    """A viewer's side of the handshake with a relay that offers security None."""
    version = b"RFB 003.%03d\n" % minor
    choice = b"" if minor == 3 else b"\x01"
    return version + choice + bytes([int(shared)])
