"""``RelayServerHandshake``: the server side of the RFB handshake toward a viewer, sans-IO.

A relay (Corral's console proxy) offers RFB 3.8 with the security type None only: the viewer
was authenticated by the web layer, and the relay's own connection to the real server does
whatever security that server needs. ClientInit is answered with the real server's ServerInit.
Transitions (RFC 6143 §7.1-7.3; one method per state, each reads one viewer message):

    VERSION ──3.3──▶ CLIENT_INIT        the relay decides: u32 security type 1 (None)
       └──3.7/3.8──▶ SECURITY           the relay offers one type: [None]
    SECURITY ──None──▶ CLIENT_INIT      3.8: SecurityResult OK; 3.7: no SecurityResult
    CLIENT_INIT ─────▶ DONE             the relay sends ServerInit; RelayReady
       └─(no ServerInit yet)─▶ SERVER_INIT  PAUSED until ``send_server_init``: a relay may
                                        connect to the real server only once the viewer spoke
    SERVER_INIT ─send_server_init─▶ DONE
    any state ── malformed, unsupported or EOF ──▶ ERROR
"""

from __future__ import annotations

import collections
import enum
import re
import struct
from collections.abc import Callable
from typing import ClassVar

from ._errors import LocalProtocolError, RemoteProtocolError, TruncatedStream
from ._events import NEED_DATA, PAUSED, Event, SecurityType
from ._reader import NeedData, Reader
from ._relay_events import ClientVersion, RelayReady, SecurityChosen

_GREETING = b"RFB 003.008\n"
_VERSION = re.compile(rb"RFB (\d{3})\.(\d{3})\n")
_ACCEPTED = {(3, 3), (3, 7), (3, 8)}
_OK, _FAILED = struct.pack(">I", 0), struct.pack(">I", 1)


def _checked(server_init: bytes) -> bytes:
    if len(server_init) < 24 or struct.unpack_from(">I", server_init, 20)[0] != (
        len(server_init) - 24
    ):
        raise LocalProtocolError(
            "server_init must be one complete ServerInit message (width, height, pixel "
            "format, name): pass Connected.server_init_bytes()"
        )
    return bytes(server_init)


_Handler = Callable[["RelayServerHandshake", Reader], None]


class RelayHandshakeState(enum.Enum):
    VERSION = enum.auto()
    SECURITY = enum.auto()
    CLIENT_INIT = enum.auto()
    SERVER_INIT = enum.auto()
    DONE = enum.auto()
    ERROR = enum.auto()


class RelayServerHandshake:
    """Plays the RFB server toward a viewer until ClientInit, then hands the stream over.

    The greeting is queued at once: write ``data_to_send()`` first. Then feed the viewer's
    bytes with ``receive_data`` (``b""`` at EOF), call ``next_event`` until ``NEED_DATA`` or
    ``PAUSED`` (which follows ``RelayReady``), and write ``data_to_send()`` after each step.
    The viewer's first messages may already be buffered then: pass ``take_unparsed()`` to a
    ``ClientMessageReader`` (``unparsed=``). After a ``RemoteProtocolError``,
    ``data_to_send()`` may hold a refusal with a reason (3.8) worth sending before closing.

    ``server_init`` is the real server's ServerInit (``Connected.server_init_bytes()``). Without
    it the handshake stops at ClientInit (state ``SERVER_INIT``, ``next_event`` gives
    ``PAUSED``) until ``send_server_init``: a relay need not hold a connection to the real
    server for a viewer that never gets that far.
    """

    def __init__(self, server_init: bytes | None = None) -> None:
        self.state = RelayHandshakeState.VERSION
        self.version = (3, 8)
        self.shared = True
        self._server_init = None if server_init is None else _checked(server_init)
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self._out = bytearray(_GREETING)
        self._events: collections.deque[Event] = collections.deque()

    # --- I/O boundary -----------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Add bytes from the viewer; ``b""`` means the viewer closed the connection."""
        if self.state is RelayHandshakeState.DONE:
            raise LocalProtocolError(
                "the handshake is over: feed the viewer's bytes to a ClientMessageReader"
            )
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("receive_data called after the end of the stream")
        self._buf += data

    def data_to_send(self) -> bytes:
        """Bytes for the viewer: greeting, security, SecurityResult, ServerInit."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def send_server_init(self, server_init: bytes) -> None:
        """Answer the viewer's ClientInit (state ``SERVER_INIT``) with the real server's
        ServerInit; ``RelayReady`` follows."""
        if self.state is not RelayHandshakeState.SERVER_INIT:
            raise LocalProtocolError(
                f"send_server_init called in state {self.state.name}; wait until the viewer's "
                "ClientInit arrived (state SERVER_INIT)"
            )
        self._out += _checked(server_init)
        self._events.append(RelayReady(self.version, self.shared))
        self.state = RelayHandshakeState.DONE

    def take_unparsed(self) -> bytes:
        """The viewer's bytes after ClientInit (its first messages, if it did not wait)."""
        if self.state is not RelayHandshakeState.DONE:
            raise LocalProtocolError(
                f"take_unparsed called in state {self.state.name}; wait for RelayReady"
            )
        rest = bytes(self._buf[self._pos :])
        self._buf.clear()
        self._pos = 0
        return rest

    # --- events -----------------------------------------------------------------------------
    def next_event(self) -> Event:
        """``ClientVersion``, ``SecurityChosen``, ``RelayReady``, or ``NEED_DATA``; after
        ``RelayReady``, ``PAUSED`` (hand the stream over); ``PAUSED`` too while waiting for
        ``send_server_init``."""
        if self._events:
            return self._events.popleft()
        if self.state is RelayHandshakeState.ERROR:
            raise LocalProtocolError("the viewer's handshake already failed; close the session")
        if self.state in (RelayHandshakeState.DONE, RelayHandshakeState.SERVER_INIT):
            # h11's PAUSED: only the caller can go on, with take_unparsed() or
            # send_server_init()
            return PAUSED
        try:
            return self._next_event()
        except RemoteProtocolError:
            self.state = RelayHandshakeState.ERROR
            raise

    def _next_event(self) -> Event:
        while not self._events:
            r = Reader(self._buf, self._pos)
            try:
                self._HANDLERS[self.state](self, r)
            except NeedData:
                if self._eof:
                    raise TruncatedStream(
                        "the viewer closed the connection during the handshake (waiting "
                        f"for its {self.state.name.replace('_', ' ').lower()} message)"
                    ) from None
                return NEED_DATA
            self._pos = r.pos
            if self.state is RelayHandshakeState.SERVER_INIT and not self._events:
                return PAUSED  # ClientInit read; the caller brings the ServerInit
        return self._events.popleft()

    # --- one method per state ---------------------------------------------------------------
    def _on_version(self, r: Reader) -> None:
        line = r.take(12)
        m = _VERSION.fullmatch(line)
        if not m:
            raise RemoteProtocolError(
                f"the viewer is not an RFB (VNC) client: it answered the greeting with {line!r}"
            )
        version = (int(m[1]), int(m[2]))
        if version not in _ACCEPTED:
            raise RemoteProtocolError(
                f"the viewer asked for RFB {version[0]}.{version[1]}; this relay offered 3.8 "
                "and accepts 3.3, 3.7 or 3.8"
            )
        self.version = version
        self._events.append(ClientVersion(version))
        if version == (3, 3):
            # 3.3: the server decides, as a u32; no SecurityResult follows for None.
            self._out += struct.pack(">I", SecurityType.NONE)
            self._events.append(SecurityChosen(SecurityType.NONE))
            self.state = RelayHandshakeState.CLIENT_INIT
        else:
            self._out += bytes([1, SecurityType.NONE])
            self.state = RelayHandshakeState.SECURITY

    def _on_security(self, r: Reader) -> None:
        chosen = r.u8()
        if chosen != SecurityType.NONE:
            reason = f"security type {chosen} was not offered; this relay offers only None (1)"
            if self.version == (3, 8):  # only 3.8 has a failure reason
                data = reason.encode()
                self._out += _FAILED + struct.pack(">I", len(data)) + data
            raise RemoteProtocolError(f"the viewer chose {reason}")
        if self.version == (3, 8):
            self._out += _OK
        self._events.append(SecurityChosen(SecurityType.NONE))
        self.state = RelayHandshakeState.CLIENT_INIT

    def _on_client_init(self, r: Reader) -> None:
        self.shared = r.u8() != 0
        self.state = RelayHandshakeState.SERVER_INIT
        if self._server_init is not None:
            self.send_server_init(self._server_init)

    _HANDLERS: ClassVar[dict[RelayHandshakeState, _Handler]] = {
        RelayHandshakeState.VERSION: _on_version,
        RelayHandshakeState.SECURITY: _on_security,
        RelayHandshakeState.CLIENT_INIT: _on_client_init,
    }
