"""The atheris targets of the relay side: a viewer's bytes either parse or raise
``RemoteProtocolError`` (the rule of ``_rfb_target.py``), and feeding them whole or in small
chunks gives the same events.

``rfb_client_messages.py`` fuzzes ``ClientMessageReader`` (the first byte picks the
ExtendedMouseButtons framing); ``rfb_relay_handshake.py`` fuzzes ``RelayServerHandshake`` from
the viewer's first byte, then hands the rest to a ``ClientMessageReader``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

# Coverage feedback from Corral's own code only (see _rfb_target.py).
with atheris.instrument_imports(include=["corral"]):
    from corral.rfb import (
        NEED_DATA,
        PAUSED,
        RGBX32,
        ClientMessage,
        ClientMessageReader,
        ConnectionClosed,
        Event,
        Limits,
        RelayHandshakeState,
        RelayServerHandshake,
        RemoteProtocolError,
    )

LIMITS = Limits(max_cut_text_bytes=1 << 16, max_client_encodings=64, max_client_screens=4)
SERVER_INIT = b"\x00\x40\x00\x30" + RGBX32.to_bytes() + b"\x00\x00\x00\x04fuzz"


def _drain(reader: ClientMessageReader, out: list[object]) -> bool:
    """Events until NEED_DATA; False once the viewer hung up."""
    while (event := reader.next_event()) is not NEED_DATA:
        out.append(event)
        if isinstance(event, ConnectionClosed):
            return False
    return True


def messages(data: bytes, chunk: int, ext: bool, unparsed: bytes = b"") -> list[object]:
    reader = ClientMessageReader(limits=LIMITS, extended_mouse_buttons=ext, unparsed=unparsed)
    out: list[object] = []
    try:
        for i in range(0, len(data), chunk):
            reader.receive_data(data[i : i + chunk])
            _drain(reader, out)
        reader.receive_data(b"")
        _drain(reader, out)
    except RemoteProtocolError as exc:
        out.append(type(exc).__name__)
    return out


def handshake(data: bytes, chunk: int) -> list[object]:
    """Events, all bytes sent, then (after RelayReady) the framed messages of the rest."""
    hs = RelayServerHandshake(SERVER_INIT)
    events: list[object] = []
    sent = bytearray(hs.data_to_send())
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] + [b""]  # b"": EOF
    try:
        for n, piece in enumerate(pieces):
            hs.receive_data(piece)
            event: Event
            while (event := hs.next_event()) not in (NEED_DATA, PAUSED):
                events.append(event)
            sent += hs.data_to_send()
            if hs.state is RelayHandshakeState.DONE:
                rest = b"".join(pieces[n + 1 :])
                return [*events, bytes(sent), *messages(rest, chunk, False, hs.take_unparsed())]
    except RemoteProtocolError as exc:
        events.append(type(exc).__name__)
    return [*events, bytes(sent + hs.data_to_send())]


def _same(whole: list[object], chunked: list[object]) -> None:
    # ==, not repr: a ClientMessage's repr leaves out its raw bytes, its equality does not.
    if whole != chunked:
        raise AssertionError(f"whole {whole!r} != chunked {chunked!r}")


def client_messages_target(data: bytes) -> None:
    if not data:
        return
    ext, body = bool(data[0] & 1), data[1:]
    whole = messages(body, max(len(body), 1), ext)
    _same(whole, messages(body, 7, ext))
    # Lossless framing: the raw bytes of the messages are the stream, up to any error.
    raw = b"".join(e.raw for e in whole if isinstance(e, ClientMessage))
    if not body.startswith(raw) or (isinstance(whole[-1], ConnectionClosed) and raw != body):
        raise AssertionError(f"raw bytes {raw!r} are not the stream {body!r}")


def relay_handshake_target(data: bytes) -> None:
    _same(handshake(data, max(len(data), 1)), handshake(data, 5))


def main(target: object) -> None:
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
