"""``RFBConnection``: the sans-IO client (bytes in, events out; messages in, bytes out)."""

from __future__ import annotations

import collections
import enum

from ._errors import LocalProtocolError, RemoteProtocolError, TruncatedStream
from ._events import (
    NEED_DATA,
    PAUSED,
    Connected,
    ConnectionClosed,
    Encoding,
    Event,
    Message,
    SetEncodings,
)
from ._framebuffer import Framebuffer
from ._handshake import Credentials, Handshake, HandshakeState
from ._limits import Limits
from ._messages import encode_message, set_encodings, set_pixel_format
from ._pixel import RGBX32, PixelFormat
from ._reader import DecodeContext, NeedData, Reader
from ._updates import UpdateParser

DEFAULT_ENCODINGS: tuple[int, ...] = (
    Encoding.ZRLE,
    Encoding.TIGHT,
    Encoding.HEXTILE,
    Encoding.ZLIB,
    Encoding.COPY_RECT,
    Encoding.RRE,
    Encoding.RAW,
    Encoding.DESKTOP_SIZE,
    Encoding.EXTENDED_DESKTOP_SIZE,
    Encoding.LAST_RECT,
    Encoding.CURSOR,
    Encoding.QEMU_EXTENDED_KEY_EVENT,
    Encoding.QEMU_LED_STATE,
    Encoding.EXTENDED_CLIPBOARD,
)


class ConnectionState(enum.Enum):
    HANDSHAKE = enum.auto()  # → WAIT_TLS (VeNCrypt) → HANDSHAKE, or → NORMAL at ServerInit
    WAIT_TLS = enum.auto()  # caller wraps the transport in TLS, then calls tls_started()
    NORMAL = enum.auto()  # → CLOSED at a clean EOF, → ERROR on any protocol violation
    CLOSED = enum.auto()
    ERROR = enum.auto()


class RFBConnection:
    """The client side of one RFB connection, without any I/O.

    Feed server bytes with ``receive_data`` (``b""`` at EOF), call ``next_event`` until it
    returns ``NEED_DATA`` (or ``PAUSED`` while TLS must be started), and write
    ``data_to_send()`` to the server after each step: the handshake replies, SetPixelFormat
    and SetEncodings are queued there automatically. ``send(message)`` returns the bytes of
    a client message. Decoded pixels land in ``framebuffer`` (see ``Framebuffer``).
    """

    def __init__(
        self,
        *,
        password: str | None = None,
        username: str | None = None,
        tls: bool = False,
        shared: bool = True,
        pixel_format: PixelFormat = RGBX32,
        encodings: tuple[int, ...] = DEFAULT_ENCODINGS,
        limits: Limits | None = None,
    ) -> None:
        pixel_format.validate_for_client()
        self.limits = limits or Limits()
        self.pixel_format = pixel_format
        self.encodings = tuple(encodings)
        self.state = ConnectionState.HANDSHAKE
        self.framebuffer = Framebuffer(
            0, 0, self.limits.max_painted_pixels_per_update, pixel_format
        )
        self._creds = Credentials(password, username, tls, shared)
        self._handshake = Handshake(self._creds, self.limits, self._queue)
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self._out = bytearray()
        self._updates: UpdateParser | None = None
        self._events: collections.deque[Event] = collections.deque()

    # --- I/O boundary -----------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Add bytes from the server; ``b""`` means the server closed the connection."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("receive_data called after the end of the stream")
        self._buf += data

    def data_to_send(self) -> bytes:
        """Bytes the protocol queued for the server (handshake replies, initial setup)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def take_unparsed(self) -> bytes:
        """Hand over the stream: buffered server bytes not parsed yet (a proxy relays them
        after ``Connected``; drop ``data_to_send()`` then, the relayed client sets its own
        pixel format and encodings)."""
        rest = bytes(self._buf[self._pos :])
        del self._buf[:]
        self._pos = 0
        return rest

    def _queue(self, data: bytes) -> None:
        self._out += data

    def tls_started(self) -> None:
        """Tell the connection TLS is now active; later bytes are the decrypted stream."""
        if self.state is not ConnectionState.WAIT_TLS:
            raise LocalProtocolError("tls_started called while no TLS handshake was requested")
        self._refuse_plaintext()
        self._handshake.tls_started()
        self.state = ConnectionState.HANDSHAKE

    def _refuse_plaintext(self) -> None:
        if self._pos < len(self._buf):
            self.state = ConnectionState.ERROR
            raise RemoteProtocolError("server sent plaintext after agreeing to start TLS")

    @property
    def vencrypt_subtype(self) -> int:
        """The VeNCrypt subtype in use (0 without VeNCrypt)."""
        return self._handshake.subtype

    @property
    def server_supports_qemu_key_events(self) -> bool:
        return self._updates is not None and self._updates.qemu_key_events

    @property
    def extended_clipboard(self) -> bool:
        return self._updates is not None and self._updates.clipboard_caps is not None

    # --- events -----------------------------------------------------------------------------
    def next_event(self) -> Event:
        """The next event, ``NEED_DATA``, or ``PAUSED`` (start TLS, then ``tls_started``)."""
        if self.state is ConnectionState.ERROR:
            raise LocalProtocolError("the connection already failed; open a new one")
        if self.framebuffer.error is not None:  # found while painting lazily
            self.state = ConnectionState.ERROR
            raise self.framebuffer.error
        try:
            return self._next_event()
        except RemoteProtocolError:
            self.state = ConnectionState.ERROR
            raise

    def _next_event(self) -> Event:
        while True:
            if self._events:
                return self._events.popleft()
            if self.state is ConnectionState.WAIT_TLS:
                self._refuse_plaintext()
                return PAUSED
            if self.state is ConnectionState.CLOSED:
                return ConnectionClosed()
            r = Reader(self._buf, self._pos)
            try:
                event = self._step(r)
            except NeedData:
                return self._need_data()
            self._commit(r.pos)
            if event is not None:
                return event

    def _need_data(self) -> Event:
        if not self._eof:
            return NEED_DATA
        at_boundary = self._pos == len(self._buf) and (
            self._updates is not None and self._updates.idle
        )
        if at_boundary:
            self.state = ConnectionState.CLOSED
            return ConnectionClosed()
        raise TruncatedStream(
            f"server closed the connection in the middle of a message "
            f"({len(self._buf) - self._pos} bytes of it received)"
        )

    def _commit(self, pos: int) -> int:
        """Keep everything before ``pos``; returns the position after any compaction."""
        self._pos = pos
        # Compact occasionally: deleting the prefix costs a copy of the rest.
        if pos > 65536 and pos * 2 > len(self._buf):
            del self._buf[:pos]
            self._pos = 0
        return self._pos

    def _step(self, r: Reader) -> Event | None:
        if self._updates is not None:
            return self._updates.step(r, self._commit)
        event = self._handshake.step(r)
        if self._handshake.state is HandshakeState.WAIT_TLS:
            self.state = ConnectionState.WAIT_TLS
        elif isinstance(event, Connected):
            self._start_normal(event)
        return event

    def _start_normal(self, event: Connected) -> None:
        fb = self.framebuffer
        fb.resize(event.width, event.height)
        ctx = DecodeContext(fb, self.pixel_format, self.limits)
        self._updates = UpdateParser(ctx, set(self.encodings), self._queue)
        self._queue(set_pixel_format(self.pixel_format))
        self._queue(set_encodings(self.encodings))
        self.state = ConnectionState.NORMAL

    # --- messages ---------------------------------------------------------------------------
    def send(self, message: Message) -> bytes:
        """Encode a client message; only valid once the handshake finished."""
        if self.state is not ConnectionState.NORMAL or self._updates is None:
            raise LocalProtocolError(
                f"cannot send {type(message).__name__} in state {self.state.name}"
            )
        if isinstance(message, SetEncodings):
            self._updates.allowed.update(message.encodings)
        return encode_message(message, self._updates)
