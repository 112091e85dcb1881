"""Extended Clipboard pseudo-encoding (0xC0A1E5CE): UTF-8 text with capabilities."""

from __future__ import annotations

import struct
import zlib

from ._errors import InvalidEncodingData, LimitExceeded
from ._events import ClipboardAction, ClipboardCapabilities, ClipboardProvided, Event
from ._limits import Limits

TEXT = 1
CAPS, REQUEST, PEEK, NOTIFY, PROVIDE = (1 << 24, 1 << 25, 1 << 26, 1 << 27, 1 << 28)
FORMATS = 0xFFFF


def _cut_text_message(payload: bytes) -> bytes:
    return struct.pack(">Bxxxi", 6, -len(payload)) + payload


def our_capabilities(limits: Limits) -> bytes:
    """Caps message: text only, every action, text up to ``max_cut_text_bytes``."""
    flags = CAPS | REQUEST | PEEK | NOTIFY | PROVIDE | TEXT
    return _cut_text_message(struct.pack(">II", flags, limits.max_cut_text_bytes))


def provide_text(text: str) -> bytes:
    """A Provide message carrying ``text`` (CRLF line ends, NUL-terminated UTF-8)."""
    data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode() + b"\0"
    body = zlib.compress(struct.pack(">I", len(data)) + data)
    return _cut_text_message(struct.pack(">I", PROVIDE | TEXT) + body)


def handle_extended_clipboard(payload: bytes, limits: Limits) -> Event:
    if len(payload) < 4:
        raise InvalidEncodingData("server sent an extended clipboard message without flags")
    (flags,) = struct.unpack_from(">I", payload)
    body = payload[4:]
    if flags & CAPS:
        count = bin(flags & FORMATS).count("1")
        if len(body) < 4 * count:
            raise InvalidEncodingData("server's clipboard capabilities are truncated")
        return ClipboardCapabilities(flags, struct.unpack_from(f">{count}I", body))
    if flags & PROVIDE:
        return ClipboardProvided(provided_text(flags, body, limits))
    return ClipboardAction(flags & ~FORMATS, flags & FORMATS)


def provided_text(flags: int, body: bytes, limits: Limits, who: str = "server") -> str | None:
    """The text format of a Provide message's zlib ``body`` (None without it); ``who`` sent it
    ("server", or "viewer" for a relay), for the error messages."""
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(body, limits.max_cut_text_bytes + 1)
    except zlib.error as exc:
        raise InvalidEncodingData(f"{who} sent corrupt clipboard data: {exc}") from None
    if len(data) > limits.max_cut_text_bytes or inflater.unconsumed_tail:
        raise LimitExceeded(
            f"{who} sent more than {limits.max_cut_text_bytes} bytes of clipboard data; raise "
            f"Limits.max_cut_text_bytes if this {who} is trusted"
        )
    pos = 0
    for bit in range(16):
        if not flags & (1 << bit):
            continue
        if pos + 4 > len(data):
            raise InvalidEncodingData(f"{who}'s clipboard data is truncated")
        (size,) = struct.unpack_from(">I", data, pos)
        chunk = data[pos + 4 : pos + 4 + size]
        if len(chunk) != size:
            raise InvalidEncodingData(f"{who}'s clipboard data is truncated")
        pos += 4 + size
        if bit == 0:
            return chunk.split(b"\0", 1)[0].decode("utf-8", "replace").replace("\r\n", "\n")
    return None
