"""``ClientMessageReader``: frames a viewer's client-to-server messages for a relay, sans-IO.

Framing takes two steps. The first bytes of a message (at most 9) fix its length, and sizes
are checked against ``Limits`` right there — before the body is waited for — so the reader
never holds more than the largest allowed message. Then the complete message is decoded from
its bytes. The lengths agree with QEMU's reader (``protocol_client_msg`` in ``ui/vnc.c``) for
every type QEMU knows: the messages a proxy forwards and those it drops start and end at the
same bytes on both sides, so a viewer cannot hide one message inside another.

A type or sub-type not in the table below cannot be framed, so it is a ``RemoteProtocolError``
and the proxy must close the session.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from typing import NamedTuple

from ._clipboard import CAPS, FORMATS, PROVIDE, provided_text
from ._errors import LimitExceeded, LocalProtocolError, RemoteProtocolError, TruncatedStream
from ._events import NEED_DATA, ConnectionClosed, Event, Screen
from ._limits import Limits
from ._pixel import PixelFormat
from ._relay_events import (
    ClientClipboard,
    ClientContinuousUpdates,
    ClientFence,
    ClientKeyEvent,
    ClientMessage,
    ClientPointerEvent,
    ClientQEMUAudio,
    ClientQEMUKeyEvent,
    ClientSetDesktopSize,
    ClientSetEncodings,
    ClientSetPixelFormat,
    ClientUpdateRequest,
    ClientXVP,
)

_HEAD = 9  # the longest header that fixes a length: Fence's, up to its payload-length byte
_MAX_FENCE_PAYLOAD = 64  # RFB community spec: "length must be at most 64"
_U16 = struct.Struct(">H")
_S32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_RECT = struct.Struct(">xBHHHH")  # FramebufferUpdateRequest, EnableContinuousUpdates
_SCREEN = struct.Struct(">IHHHHI")


class ReaderState(enum.Enum):
    OPEN = enum.auto()  # → CLOSED at an EOF between messages; → ERROR on a malformed message
    CLOSED = enum.auto()  # the viewer hung up cleanly: ``next_event`` says ConnectionClosed
    ERROR = enum.auto()  # terminal: the proxy closes the session


class ClientMessageReader:
    """Frames the messages a viewer (noVNC) sends after the handshake.

    Feed the viewer's bytes with ``receive_data`` (``b""`` at EOF) and call ``next_event``
    until it returns ``NEED_DATA``: each ``ClientMessage`` carries the exact bytes to forward
    (``raw``), its ``kind`` and ``changes_guest``. Bytes the handshake left over go to the
    constructor (``unparsed=``), not to ``receive_data``, where ``b""`` would mean EOF.

    Drain ``next_event`` after each ``receive_data``: the buffer then holds at most one
    incomplete message plus the latest chunk, and no incomplete message may be larger than
    ``Limits`` allow (a ClientCutText's length is checked before its body is awaited).

    ``extended_mouse_buttons``: set it only if the server confirmed the ExtendedMouseButtons
    pseudo-encoding (-316). A PointerEvent whose mask has bit 7 set is then 7 bytes, not 6.
    noVNC 1.7 asks for -316, but QEMU (7.2 here, and its current ``ui/vnc.c``) does not
    confirm it, so noVNC sends the RFC 6143 six-byte form; a relay must not guess here.
    """

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        extended_mouse_buttons: bool = False,
        unparsed: bytes = b"",
    ) -> None:
        self.limits = limits or Limits()
        self.extended_mouse_buttons = extended_mouse_buttons
        self.state = ReaderState.OPEN
        self._buf = bytearray(unparsed)
        self._pos = 0
        self._eof = False

    def receive_data(self, data: bytes) -> None:
        """Add bytes from the viewer; ``b""`` means the viewer closed the connection."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("receive_data called after the end of the stream")
        self._buf += data

    def next_event(self) -> Event:
        """The next ``ClientMessage``, ``NEED_DATA``, or ``ConnectionClosed`` after a clean EOF."""
        if self.state is ReaderState.ERROR:
            raise LocalProtocolError("the viewer's stream already failed; close the session")
        if self.state is ReaderState.CLOSED:
            return ConnectionClosed()
        try:
            return self._next_event()
        except RemoteProtocolError:
            self.state = ReaderState.ERROR
            raise

    def _next_event(self) -> Event:
        available = len(self._buf) - self._pos
        if available == 0:
            if self._eof:
                self.state = ReaderState.CLOSED
                return ConnectionClosed()
            return NEED_DATA
        head = bytes(self._buf[self._pos : self._pos + _HEAD])
        spec = _TYPES.get(head[0])
        if spec is None:
            raise RemoteProtocolError(
                f"the viewer sent a message of the unknown type {head[0]}: a relay cannot "
                "frame what it does not know, so the session ends"
            )
        length = spec.length(self, head)
        if length is None or available < length:
            if self._eof:
                raise TruncatedStream(
                    f"the viewer closed the connection in the middle of a {spec.name} message "
                    f"({available} bytes of it received)"
                )
            return NEED_DATA
        message = bytes(self._buf[self._pos : self._pos + length])
        event = spec.decode(self, message)
        self._consume(length)
        return event

    def _consume(self, n: int) -> None:
        self._pos += n
        # Compact when the buffer is empty (free) or mostly consumed (one copy of the rest).
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0


# --- lengths: from the first bytes of a message; None while they are not all there ----------
_Length = Callable[[ClientMessageReader, bytes], int | None]
_Decode = Callable[[ClientMessageReader, bytes], ClientMessage]


def _check(value: int, limit: int, what: str, field: str) -> None:
    if value > limit:
        raise LimitExceeded(
            f"the viewer sent {what} of {value}, above the relay's limit of {limit} "
            f"(Limits.{field})"
        )


def _fixed(n: int) -> _Length:
    return lambda reader, head: n


def _encodings_length(reader: ClientMessageReader, head: bytes) -> int | None:
    if len(head) < 4:
        return None
    count = int(_U16.unpack_from(head, 2)[0])
    limit = reader.limits.max_client_encodings
    _check(count, limit, "a SetEncodings with a count", "max_client_encodings")
    return 4 + 4 * count


def _pointer_length(reader: ClientMessageReader, head: bytes) -> int | None:
    if not reader.extended_mouse_buttons:
        return 6
    if len(head) < 2:
        return None
    return 7 if head[1] & 0x80 else 6


def _cut_text_length(reader: ClientMessageReader, head: bytes) -> int | None:
    if len(head) < 8:
        return None
    length = int(_S32.unpack_from(head, 4)[0])
    size = abs(length)  # negative: Extended Clipboard
    limit = reader.limits.max_cut_text_bytes
    _check(size, limit, "a ClientCutText with a length", "max_cut_text_bytes")
    if length < 0 and size < 4:
        raise RemoteProtocolError(
            f"the viewer sent an Extended Clipboard message of {size} bytes, too short for "
            "its 4 bytes of flags"
        )
    return 8 + size


def _fence_length(reader: ClientMessageReader, head: bytes) -> int | None:
    if len(head) < 9:
        return None
    if head[8] > _MAX_FENCE_PAYLOAD:
        raise RemoteProtocolError(
            f"the viewer sent a Fence with a {head[8]}-byte payload; at most "
            f"{_MAX_FENCE_PAYLOAD} bytes are allowed"
        )
    return 9 + head[8]


def _desktop_size_length(reader: ClientMessageReader, head: bytes) -> int | None:
    if len(head) < 8:
        return None
    limit = reader.limits.max_client_screens
    _check(head[6], limit, "a SetDesktopSize with a screen count", "max_client_screens")
    return 8 + 16 * head[6]


def _qemu_length(reader: ClientMessageReader, head: bytes) -> int | None:
    if len(head) < 2:
        return None
    if head[1] == 0:  # extended key event
        return 12
    if head[1] != 1:
        raise RemoteProtocolError(
            f"the viewer sent a QEMU client message of the unknown sub-type {head[1]} "
            "(0 extended key event and 1 audio are known)"
        )
    if len(head) < 4:
        return None
    (operation,) = _U16.unpack_from(head, 2)
    if operation in (0, 1):  # enable, disable
        return 4
    if operation == 2:  # set format: u8 sample format, u8 channels, u32 frequency
        return 10
    raise RemoteProtocolError(
        f"the viewer sent a QEMU audio message with the unknown operation {operation} "
        "(0 enable, 1 disable and 2 set format are known)"
    )


# --- decoding: from the complete message ------------------------------------------------------
def _pixel_format(reader: ClientMessageReader, m: bytes) -> ClientMessage:
    return ClientSetPixelFormat(m, PixelFormat.from_bytes(m[4:20]))


def _encodings(reader: ClientMessageReader, m: bytes) -> ClientMessage:
    return ClientSetEncodings(m, struct.unpack_from(f">{(len(m) - 4) // 4}i", m, 4))


def _update_request(reader: ClientMessageReader, m: bytes) -> ClientMessage:
    incremental, x, y, w, h = _RECT.unpack(m)
    return ClientUpdateRequest(m, incremental != 0, x, y, w, h)


def _continuous_updates(reader: ClientMessageReader, m: bytes) -> ClientMessage:
    enable, x, y, w, h = _RECT.unpack(m)
    return ClientContinuousUpdates(m, enable != 0, x, y, w, h)


def _key(reader: ClientMessageReader, m: bytes) -> ClientMessage:
    (keysym,) = _U32.unpack_from(m, 4)
    return ClientKeyEvent(m, keysym, m[1] != 0)


def _pointer(reader: ClientMessageReader, m: bytes) -> ClientMessage:
    x, y = struct.unpack_from(">HH", m, 2)
    # ExtendedMouseButtons: bit 7 of the mask is the marker; the 7th byte holds buttons 8-9.
    buttons = ((m[1] & 0x7F) | m[6] << 7) if len(m) == 7 else m[1]
    return ClientPointerEvent(m, x, y, buttons)


def _cut_text(reader: ClientMessageReader, m: bytes) -> ClientMessage:
    (length,) = _S32.unpack_from(m, 4)
    if length >= 0:
        return ClientClipboard(m, False, 0, 0, m[8:].decode("latin-1"))
    (flags,) = _U32.unpack_from(m, 8)
    action, formats = flags & ~FORMATS, flags & FORMATS
    text = None
    if action & PROVIDE and not action & CAPS:
        text = provided_text(flags, m[12:], reader.limits, "viewer")
    return ClientClipboard(m, True, action, formats, text)


def _fence(reader: ClientMessageReader, m: bytes) -> ClientMessage:
    (flags,) = _U32.unpack_from(m, 4)
    return ClientFence(m, flags, m[9:])


def _xvp(reader: ClientMessageReader, m: bytes) -> ClientMessage:
    return ClientXVP(m, m[2], m[3])


def _desktop_size(reader: ClientMessageReader, m: bytes) -> ClientMessage:
    width, height = struct.unpack_from(">HH", m, 2)
    screens = tuple(Screen(*_SCREEN.unpack_from(m, 8 + 16 * i)) for i in range(m[6]))
    return ClientSetDesktopSize(m, width, height, screens)


def _qemu(reader: ClientMessageReader, m: bytes) -> ClientMessage:
    if m[1] == 0:
        down, keysym, keycode = struct.unpack_from(">HII", m, 2)
        return ClientQEMUKeyEvent(m, keysym, keycode, down != 0)
    (operation,) = _U16.unpack_from(m, 2)
    if operation == 2:
        sample_format, channels, frequency = struct.unpack_from(">BBI", m, 4)
        return ClientQEMUAudio(m, operation, sample_format, channels, frequency)
    return ClientQEMUAudio(m, operation)


class _Type(NamedTuple):
    name: str
    length: _Length
    decode: _Decode


# RFC 6143 §7.5, plus the extensions noVNC sends (rfbproto's community registry) and QEMU's.
_TYPES: dict[int, _Type] = {
    0: _Type("SetPixelFormat", _fixed(20), _pixel_format),
    2: _Type("SetEncodings", _encodings_length, _encodings),
    3: _Type("FramebufferUpdateRequest", _fixed(10), _update_request),
    4: _Type("KeyEvent", _fixed(8), _key),
    5: _Type("PointerEvent", _pointer_length, _pointer),
    6: _Type("ClientCutText", _cut_text_length, _cut_text),
    150: _Type("EnableContinuousUpdates", _fixed(10), _continuous_updates),
    248: _Type("Fence", _fence_length, _fence),
    250: _Type("XVP", _fixed(4), _xvp),
    251: _Type("SetDesktopSize", _desktop_size_length, _desktop_size),
    255: _Type("QEMU", _qemu_length, _qemu),
}
