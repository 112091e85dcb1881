"""Events the sans-IO connection produces, and messages it turns into bytes (h11 style)."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ._pixel import PixelFormat


class Encoding(enum.IntEnum):
    """Encoding and pseudo-encoding numbers (RFC 6143 and the community registry)."""

    RAW = 0
    COPY_RECT = 1
    RRE = 2
    HEXTILE = 5
    ZLIB = 6
    TIGHT = 7
    ZRLE = 16
    TIGHT_PNG = -260
    # Tight quality/compression levels (pseudo-encodings).
    JPEG_QUALITY_0 = -32
    COMPRESS_LEVEL_0 = -256
    DESKTOP_SIZE = -223
    LAST_RECT = -224
    CURSOR = -239
    QEMU_EXTENDED_KEY_EVENT = -258
    QEMU_AUDIO = -259
    QEMU_LED_STATE = -261
    EXTENDED_DESKTOP_SIZE = -308
    EXTENDED_CLIPBOARD = -1063131698  # 0xC0A1E5CE as a signed 32-bit number


class SecurityType(enum.IntEnum):
    INVALID = 0
    NONE = 1
    VNC_AUTH = 2
    VENCRYPT = 19


class VeNCryptSubtype(enum.IntEnum):
    PLAIN = 256
    TLS_NONE = 257
    TLS_VNC = 258
    TLS_PLAIN = 259
    X509_NONE = 260
    X509_VNC = 261
    X509_PLAIN = 262


class Event:
    """Base class of everything ``RFBConnection.next_event()`` returns."""


class _Sentinel(Event):
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA = _Sentinel("NEED_DATA")
"""``next_event()`` needs more bytes from the server before it can go on."""

PAUSED = _Sentinel("PAUSED")
"""``next_event()`` waits for the caller: TLS must be started (see ``TLSRequired``), or a
finished ``RelayServerHandshake`` must hand the stream over (``take_unparsed()``)."""


@dataclass(frozen=True, slots=True)
class TLSRequired(Event):
    """Wrap the transport in TLS now, then call ``RFBConnection.tls_started()``."""

    subtype: VeNCryptSubtype


@dataclass(frozen=True, slots=True)
class Connected(Event):
    """The handshake finished (ServerInit received); the framebuffer has this size."""

    version: tuple[int, int]
    security: int
    width: int
    height: int
    name: str
    server_pixel_format: PixelFormat

    def server_init_bytes(self) -> bytes:
        """This ServerInit as the server sent it: for a proxy that re-offers the session."""
        name = self.name.encode()
        return (
            struct.pack(">HH", self.width, self.height)
            + self.server_pixel_format.to_bytes()
            + struct.pack(">I", len(name))
            + name
        )


class Rect(NamedTuple):
    """One rectangle of a ``FramebufferUpdated``. A named tuple, not a frozen dataclass like
    the events: QEMU sends ~18 rectangles per update, and a dataclass's ``__init__`` cost
    ~0.6 µs each (a named tuple ~0.2 µs)."""

    x: int
    y: int
    width: int
    height: int
    encoding: int


@dataclass(frozen=True, slots=True)
class FramebufferUpdated(Event):
    """One FramebufferUpdate was fully applied to ``RFBConnection.framebuffer``."""

    rects: tuple[Rect, ...]


@dataclass(frozen=True, slots=True)
class Screen:
    id: int
    x: int
    y: int
    width: int
    height: int
    flags: int


@dataclass(frozen=True, slots=True)
class DesktopResized(Event):
    """The framebuffer changed size (DesktopSize or ExtendedDesktopSize)."""

    width: int
    height: int
    screens: tuple[Screen, ...] = ()
    reason: int = 0
    status: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class CursorShape(Event):
    """A new cursor image: ``rgba`` is ``(height, width, 4)`` uint8, alpha 0 or 255."""

    hotspot_x: int
    hotspot_y: int
    rgba: npt.NDArray[np.uint8] = field(repr=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CursorShape):
            return NotImplemented
        return (self.hotspot_x, self.hotspot_y) == (other.hotspot_x, other.hotspot_y) and bool(
            np.array_equal(self.rgba, other.rgba)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class LEDState(Event):
    scroll_lock: bool
    num_lock: bool
    caps_lock: bool


@dataclass(frozen=True, slots=True)
class QEMUExtendedKeyEventsSupported(Event):
    """The server accepts ``QEMUKeyEvent`` (scancode) messages."""


@dataclass(frozen=True, slots=True)
class Bell(Event):
    pass


@dataclass(frozen=True, slots=True)
class ServerCutText(Event):
    """Classic clipboard text from the server (Latin-1)."""

    text: str


@dataclass(frozen=True, slots=True)
class ClipboardCapabilities(Event):
    """Extended Clipboard: the server's supported formats, actions and size limits."""

    flags: int
    sizes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ClipboardAction(Event):
    """Extended Clipboard request/peek/notify from the server (``flags`` names formats)."""

    action: int
    flags: int


@dataclass(frozen=True, slots=True)
class ClipboardProvided(Event):
    """Extended Clipboard data: UTF-8 text (other formats are skipped)."""

    text: str | None


@dataclass(frozen=True, slots=True)
class ColourMapEntries(Event):
    first_colour: int
    colours: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True, slots=True)
class ConnectionClosed(Event):
    """The peer closed the connection cleanly between messages (the server; for a relay's
    ``ClientMessageReader``, the viewer)."""


# --- client-to-server messages (``RFBConnection.send``) ---------------------------------------
class Message:
    """Base class of everything ``RFBConnection.send()`` accepts."""


@dataclass(frozen=True, slots=True)
class SetEncodings(Message):
    encodings: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FramebufferUpdateRequest(Message):
    x: int
    y: int
    width: int
    height: int
    incremental: bool = True


@dataclass(frozen=True, slots=True)
class KeyEvent(Message):
    keysym: int
    down: bool


@dataclass(frozen=True, slots=True)
class QEMUKeyEvent(Message):
    """A key event carrying an XT scancode (``0xE0`` prefix folded in as ``0x80 | code``)."""

    keysym: int
    keycode: int
    down: bool


@dataclass(frozen=True, slots=True)
class PointerEvent(Message):
    x: int
    y: int
    buttons: int = 0


@dataclass(frozen=True, slots=True)
class ClientCutText(Message):
    """Clipboard text for the server (extended UTF-8 clipboard when the server supports it)."""

    text: str
