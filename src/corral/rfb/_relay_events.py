"""Events of the relay side: the server handshake toward a viewer, and framed client messages.

A relay (Corral's console proxy) plays the RFB *server* toward a viewer (noVNC) and forwards
the viewer's messages to the real server. Every ``ClientMessage`` keeps the exact bytes the
viewer sent in ``raw`` — forward those, never a re-encoding — plus a classification (``kind``,
``changes_guest``) a proxy filters on, and the decoded fields tests and logs need.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar

from ._clipboard import CAPS, PEEK, REQUEST
from ._events import Event, Screen
from ._pixel import PixelFormat

# --- the server handshake toward a viewer (``RelayServerHandshake.next_event``) ------------


@dataclass(frozen=True, slots=True)
class ClientVersion(Event):
    """The viewer answered the relay's "RFB 003.008" with this version (3.3, 3.7 or 3.8)."""

    version: tuple[int, int]


@dataclass(frozen=True, slots=True)
class SecurityChosen(Event):
    """Security type None is in effect (chosen by the viewer; decided by the relay for 3.3)."""

    security: int


@dataclass(frozen=True, slots=True)
class RelayReady(Event):
    """ClientInit received and ServerInit queued: the handshake is over, relay from now on.

    ``shared`` is the viewer's ClientInit flag. The relay's own connection to the server made
    its own ClientInit, so the flag is informational: a viewer cannot disconnect other
    viewers by asking for an exclusive session.
    """

    version: tuple[int, int]
    shared: bool


# --- client-to-server messages (``ClientMessageReader.next_event``) ------------------------


class ClientMessageKind(enum.StrEnum):
    """What a client message is about, for a proxy's filter."""

    DISPLAY = "display"  # pixel format, encodings, update requests, continuous updates, fence
    INPUT_KEY = "input_key"  # KeyEvent, QEMU extended key event
    INPUT_POINTER = "input_pointer"  # PointerEvent
    CLIPBOARD = "clipboard"  # ClientCutText, classic or Extended Clipboard
    RESIZE = "resize"  # SetDesktopSize
    POWER = "power"  # XVP: shutdown, reboot, reset
    AUDIO = "audio"  # QEMU audio capture on/off and its sample format


# Kinds whose messages act on the guest: a view-only session must drop them. DISPLAY only
# shapes this viewer's own stream; AUDIO only starts or stops capturing the guest's sound for
# this viewer. RESIZE asks the guest to change its display mode (QEMU forwards it to the
# guest's video driver); POWER shuts the guest down or resets it (QEMU with power-control).
_GUEST_KINDS = frozenset(
    {
        ClientMessageKind.INPUT_KEY,
        ClientMessageKind.INPUT_POINTER,
        ClientMessageKind.CLIPBOARD,
        ClientMessageKind.RESIZE,
        ClientMessageKind.POWER,
    }
)
# Extended Clipboard actions that ask for the guest's clipboard (Request: its data, Peek: a
# Notify of its formats): they change nothing in the guest. Notify does: QEMU then takes the
# guest's clipboard over for the viewer (a vdagent grab), before any Provide writes it.
_READ_ONLY_ACTIONS = REQUEST | PEEK


@dataclass(frozen=True, slots=True)
class ClientMessage(Event):
    """One complete client-to-server message; ``raw`` is its exact bytes, to forward as is.

    ``changes_guest`` is True for what a view-only session must drop: key and pointer input,
    clipboard writes (classic text, Extended Clipboard Notify and Provide), SetDesktopSize and
    XVP. It is False for display settings, audio capture and the Extended Clipboard's Caps,
    Request and Peek — which still let a viewer *read* the guest's clipboard: a proxy that keeps
    the guest clipboard private drops every ``kind is ClientMessageKind.CLIPBOARD``.
    """

    raw: bytes = field(repr=False)
    kind: ClassVar[ClientMessageKind]

    @property
    def message_type(self) -> int:
        """The RFB message-type byte (0 SetPixelFormat … 255 QEMU)."""
        return self.raw[0]

    @property
    def changes_guest(self) -> bool:
        return self.kind in _GUEST_KINDS


@dataclass(frozen=True, slots=True)
class ClientSetPixelFormat(ClientMessage):
    kind = ClientMessageKind.DISPLAY
    pixel_format: PixelFormat


@dataclass(frozen=True, slots=True)
class ClientSetEncodings(ClientMessage):
    kind = ClientMessageKind.DISPLAY
    encodings: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ClientUpdateRequest(ClientMessage):
    """FramebufferUpdateRequest."""

    kind = ClientMessageKind.DISPLAY
    incremental: bool
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class ClientContinuousUpdates(ClientMessage):
    """EnableContinuousUpdates (message type 150)."""

    kind = ClientMessageKind.DISPLAY
    enable: bool
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class ClientFence(ClientMessage):
    """Fence (message type 248); the payload is at most 64 bytes."""

    kind = ClientMessageKind.DISPLAY
    flags: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class ClientKeyEvent(ClientMessage):
    kind = ClientMessageKind.INPUT_KEY
    keysym: int
    down: bool


@dataclass(frozen=True, slots=True)
class ClientQEMUKeyEvent(ClientMessage):
    """QEMU extended key event (type 255, sub-type 0): keysym plus XT scancode."""

    kind = ClientMessageKind.INPUT_KEY
    keysym: int
    keycode: int
    down: bool


@dataclass(frozen=True, slots=True)
class ClientPointerEvent(ClientMessage):
    """PointerEvent; ``buttons`` includes the ExtendedMouseButtons high bits if framed so."""

    kind = ClientMessageKind.INPUT_POINTER
    x: int
    y: int
    buttons: int


@dataclass(frozen=True, slots=True)
class ClientClipboard(ClientMessage):
    """ClientCutText: classic Latin-1 text, or an Extended Clipboard message.

    ``action`` and ``formats`` are the Extended Clipboard flags (action bits 24-31, format bits
    0-15; both 0 for classic text). ``text`` is the classic text, or the text format of a
    Provide message; None otherwise.
    """

    kind = ClientMessageKind.CLIPBOARD
    extended: bool
    action: int
    formats: int
    text: str | None

    @property
    def changes_guest(self) -> bool:
        if not self.extended:
            return True
        if self.action & CAPS:
            # A Caps message's other action bits list what the viewer supports: it asks for
            # nothing (QEMU stores nothing and returns).
            return False
        # Unknown action bits count as writes: a proxy cannot vouch for what they do.
        return bool(self.action & ~_READ_ONLY_ACTIONS)


@dataclass(frozen=True, slots=True)
class ClientXVP(ClientMessage):
    """XVP (type 250): ``code`` 2 shutdown, 3 reboot, 4 reset."""

    kind = ClientMessageKind.POWER
    version: int
    code: int


@dataclass(frozen=True, slots=True)
class ClientSetDesktopSize(ClientMessage):
    """SetDesktopSize (type 251): the viewer asks the guest for a new display layout."""

    kind = ClientMessageKind.RESIZE
    width: int
    height: int
    screens: tuple[Screen, ...]


@dataclass(frozen=True, slots=True)
class ClientQEMUAudio(ClientMessage):
    """QEMU audio (type 255, sub-type 1): ``operation`` 0 enable, 1 disable, 2 set format
    (then ``sample_format``, ``channels`` and ``frequency`` are set; 0 otherwise)."""

    kind = ClientMessageKind.AUDIO
    operation: int
    sample_format: int = 0
    channels: int = 0
    frequency: int = 0
