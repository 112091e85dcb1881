"""``RelayServerHandshake``: RFB 3.3/3.7/3.8 viewers (hand-written bytes), refusals, the
hand-over to ``ClientMessageReader``, and this package's own client on a real socket pair."""

from __future__ import annotations

import asyncio
import socket
import struct

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from corral.rfb import (
    DEFAULT_ENCODINGS,
    NEED_DATA,
    PAUSED,
    RGBX32,
    ClientKeyEvent,
    ClientMessageReader,
    ClientPointerEvent,
    ClientSetEncodings,
    ClientSetPixelFormat,
    ClientUpdateRequest,
    ClientVersion,
    Connected,
    ConnectionClosed,
    Encoding,
    Event,
    LocalProtocolError,
    PixelFormat,
    RelayHandshakeState,
    RelayReady,
    RelayServerHandshake,
    RemoteProtocolError,
    RFBClient,
    RFBConnection,
    SecurityChosen,
    TruncatedStream,
)
from tests.unit.rfb import _viewer as viewer
from tests.unit.rfb import _wire as wire
from tests.unit.rfb._drive import chunked

SERVER_INIT = wire.handshake(640, 480, "QEMU (wéb1)".encode())[18:]
GREETING = b"RFB 003.008\n"
OK = b"\0\0\0\0"


Outcome = tuple[list[Event], bytes, RelayServerHandshake, bytes]


def _run(chunks: list[bytes], eof: bool = False) -> Outcome:
    """Feed the viewer's bytes until the handshake is done; returns the events, everything
    sent to the viewer, the handshake, and the chunks left unfed once it was done."""
    hs = RelayServerHandshake(SERVER_INIT)
    events: list[Event] = []
    sent = hs.data_to_send()
    rest = b""
    for chunk in [*chunks, b""] if eof else chunks:
        if hs.state is RelayHandshakeState.DONE:
            rest += chunk
            continue
        hs.receive_data(chunk)
        while (event := hs.next_event()) not in (NEED_DATA, PAUSED):
            events.append(event)
        sent += hs.data_to_send()
    return events, sent, hs, rest


@pytest.mark.parametrize(
    ("minor", "server_bytes"),
    [
        # 3.8: one security type offered, the viewer picks None, SecurityResult OK.
        (8, GREETING + b"\x01\x01" + OK + SERVER_INIT),
        # 3.7: the same, without a SecurityResult for None.
        (7, GREETING + b"\x01\x01" + SERVER_INIT),
        # 3.3: the server decides the security type as a u32; no SecurityResult.
        (3, GREETING + b"\0\0\0\x01" + SERVER_INIT),
    ],
)
@pytest.mark.parametrize("shared", [True, False])
def test_handshake_with_each_version(minor: int, server_bytes: bytes, shared: bool) -> None:
    data = viewer.handshake(minor, shared)
    expected = [ClientVersion((3, minor)), SecurityChosen(1), RelayReady((3, minor), shared)]
    for size in (1, 5, len(data)):
        events, sent, hs, _ = _run(chunked(data, size))
        assert events == expected
        assert sent == server_bytes
        assert hs.state is RelayHandshakeState.DONE and hs.shared is shared
        assert hs.take_unparsed() == b""


def test_the_viewers_first_messages_in_the_same_packet_are_handed_over() -> None:
    first = viewer.novnc_first_messages(640, 480)
    events, _, hs, _ = _run([viewer.handshake(8) + first + b"\x04"])
    assert events[-1] == RelayReady((3, 8), True)
    rest = hs.take_unparsed()
    assert rest == first + b"\x04"
    assert hs.take_unparsed() == b""
    reader = ClientMessageReader(unparsed=rest)
    kinds = [type(reader.next_event()) for _ in range(3)]
    assert kinds == [ClientSetPixelFormat, ClientSetEncodings, ClientUpdateRequest]
    assert reader.next_event() is NEED_DATA  # the KeyEvent's first byte waits for the rest


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"RFB 003.889\n", r"asked for RFB 3\.889; this relay offered 3\.8"),
        (b"RFB 004.001\n", r"asked for RFB 4\.1"),
        (b"RFB 003.005\n", r"asked for RFB 3\.5"),
        (b"GET / HTTP/1.1\r\n", "not an RFB .VNC. client: it answered the greeting with b'GET"),
        (b"RFB 003.008\n\x02", "viewer chose security type 2 was not offered"),
        (b"RFB 003.007\n\x13", "viewer chose security type 19"),
    ],
)
def test_refusals_say_what_the_viewer_did_wrong(data: bytes, match: str) -> None:
    for chunks in ([data], chunked(data, 1)):
        hs = RelayServerHandshake(SERVER_INIT)
        hs.data_to_send()
        with pytest.raises(RemoteProtocolError, match=match):
            for chunk in chunks:
                hs.receive_data(chunk)
                while hs.next_event() is not NEED_DATA:
                    pass
        assert hs.state is RelayHandshakeState.ERROR
        with pytest.raises(LocalProtocolError, match="already failed"):
            hs.next_event()


def test_a_38_viewer_learns_why_its_security_type_was_refused() -> None:
    hs = RelayServerHandshake(SERVER_INIT)
    hs.receive_data(b"RFB 003.008\n\x02")
    hs.next_event()
    with pytest.raises(RemoteProtocolError):
        hs.next_event()
    sent = hs.data_to_send()
    reason = b"security type 2 was not offered; this relay offers only None (1)"
    assert sent == GREETING + b"\x01\x01" + struct.pack(">II", 1, len(reason)) + reason


def test_eof_during_the_handshake() -> None:
    with pytest.raises(TruncatedStream, match=r"during the handshake \(waiting for its security"):
        _run([b"RFB 003.008\n"], eof=True)
    with pytest.raises(TruncatedStream, match="waiting for its version"):
        _run([b"RFB 00"], eof=True)


def test_misuse_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError, match=r"Connected\.server_init_bytes"):
        RelayServerHandshake(SERVER_INIT[:-1])
    with pytest.raises(LocalProtocolError, match=r"Connected\.server_init_bytes"):
        RelayServerHandshake(b"")
    hs = RelayServerHandshake(SERVER_INIT)
    with pytest.raises(LocalProtocolError, match="wait for RelayReady"):
        hs.take_unparsed()
    _, _, done, _ = _run([viewer.handshake(8)])
    with pytest.raises(LocalProtocolError, match="ClientMessageReader"):
        done.receive_data(b"\x03")
    assert done.next_event() is PAUSED


def test_the_server_init_may_come_after_the_viewers_client_init() -> None:
    """A relay that connects to the real server only once the viewer has spoken: the
    handshake pauses at ClientInit, keeps what the viewer sends meanwhile, and goes on with the
    ServerInit the caller brings."""
    hs = RelayServerHandshake()
    sent = hs.data_to_send()
    first = viewer.novnc_first_messages(640, 480)
    hs.receive_data(viewer.handshake(8, shared=False))
    events = []
    while (event := hs.next_event()) not in (NEED_DATA, PAUSED):
        events.append(event)
    assert event is PAUSED and hs.state is RelayHandshakeState.SERVER_INIT
    assert events == [ClientVersion((3, 8)), SecurityChosen(1)]
    hs.receive_data(first)  # noVNC would wait; a pipelining viewer does not
    assert hs.next_event() is PAUSED
    with pytest.raises(LocalProtocolError, match="wait for RelayReady"):
        hs.take_unparsed()
    with pytest.raises(LocalProtocolError, match=r"Connected\.server_init_bytes"):
        hs.send_server_init(SERVER_INIT[:-1])
    hs.send_server_init(SERVER_INIT)
    assert hs.next_event() == RelayReady((3, 8), False)
    assert sent + hs.data_to_send() == GREETING + b"\x01\x01" + OK + SERVER_INIT
    assert hs.take_unparsed() == first
    with pytest.raises(LocalProtocolError, match="in state DONE"):
        hs.send_server_init(SERVER_INIT)


def test_server_init_is_refused_before_client_init() -> None:
    hs = RelayServerHandshake()
    with pytest.raises(LocalProtocolError, match="in state VERSION"):
        hs.send_server_init(SERVER_INIT)


@pytest.mark.parametrize("size", [1, 3, 1000])
def test_relay_and_this_packages_client_sans_io(size: int) -> None:
    """The handshake against ``RFBConnection``: the client ends up with the offered ServerInit,
    and its first messages come out of the relay's reader."""
    pf = PixelFormat(16, 16, False, True, 31, 63, 31, 11, 5, 0)
    offered = wire.handshake(1280, 800, b"vm", pf)[18:]
    hs, client = RelayServerHandshake(offered), RFBConnection()
    client_events: list[Event] = []
    relay_events: list[Event] = []
    while hs.state is not RelayHandshakeState.DONE:
        for chunk in chunked(hs.data_to_send(), size):
            client.receive_data(chunk)
            while (event := client.next_event()) is not NEED_DATA:
                client_events.append(event)
        for chunk in chunked(client.data_to_send(), size):
            hs.receive_data(chunk)
            while (event := hs.next_event()) not in (NEED_DATA, PAUSED):
                relay_events.append(event)
    assert relay_events == [ClientVersion((3, 8)), SecurityChosen(1), RelayReady((3, 8), True)]
    assert client_events == []
    client.receive_data(hs.data_to_send())  # ServerInit
    connected = client.next_event()
    assert isinstance(connected, Connected)
    assert connected.server_init_bytes() == offered and connected.version == (3, 8)
    assert (connected.width, connected.height, connected.server_pixel_format) == (1280, 800, pf)
    reader = ClientMessageReader(unparsed=hs.take_unparsed())
    reader.receive_data(client.data_to_send())  # SetPixelFormat and SetEncodings
    assert reader.next_event() == ClientSetPixelFormat(b"\0\0\0\0" + RGBX32.to_bytes(), RGBX32)
    encodings = reader.next_event()
    assert isinstance(encodings, ClientSetEncodings) and encodings.encodings == DEFAULT_ENCODINGS
    assert reader.next_event() is NEED_DATA


async def _relay(sock: socket.socket, seen: list[Event]) -> None:
    """A minimal console proxy's viewer side: handshake, then frame messages and answer full
    update requests with one green Raw rectangle (as if relayed from the server)."""
    reader, writer = await asyncio.open_connection(sock=sock)
    hs = RelayServerHandshake(SERVER_INIT)
    writer.write(hs.data_to_send())
    while hs.state is not RelayHandshakeState.DONE:
        hs.receive_data(await reader.read(4096))
        while (event := hs.next_event()) not in (NEED_DATA, PAUSED):
            seen.append(event)
        writer.write(hs.data_to_send())
    messages = ClientMessageReader(unparsed=hs.take_unparsed())
    img = np.full((480, 640), 0x00FF00, np.uint32)
    while True:
        while (event := messages.next_event()) is not NEED_DATA:
            seen.append(event)
            if isinstance(event, ConnectionClosed):
                writer.close()
                return
            if isinstance(event, ClientUpdateRequest) and not event.incremental:
                writer.write(wire.update(wire.rect(0, 0, 640, 480, Encoding.RAW, wire.raw(img))))
        await writer.drain()
        messages.receive_data(await reader.read(4096))


async def test_relay_handshake_against_rfb_client_on_a_socket_pair() -> None:
    ours, theirs = socket.socketpair()
    seen: list[Event] = []
    relay = asyncio.create_task(_relay(theirs, seen))
    async with await RFBClient.connect_socket(ours, timeout=5) as client:
        assert client.connected is not None
        assert client.connected.server_init_bytes() == SERVER_INIT
        assert client.connected.name == "QEMU (wéb1)"
        shot = await client.screenshot(timeout=5)
        assert shot.shape == (480, 640, 3) and (shot[..., 1] == 255).all()
        await client.pointer(5, 6, 1)
        await client.press("a")
        await client.finish_input(timeout=5)
    await asyncio.wait_for(relay, 5)
    assert seen[:3] == [ClientVersion((3, 8)), SecurityChosen(1), RelayReady((3, 8), True)]
    types = [type(e) for e in seen[3:]]
    assert types[:2] == [ClientSetPixelFormat, ClientSetEncodings]
    assert ClientUpdateRequest in types and types[-1] is ConnectionClosed
    assert ClientPointerEvent(struct.pack(">BBHH", 5, 1, 5, 6), 5, 6, 1) in seen
    keys = [e for e in seen if isinstance(e, ClientKeyEvent)]
    assert [(k.keysym, k.down) for k in keys] == [(0x61, True), (0x61, False)]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=80))
@example(data=viewer.handshake(8) + viewer.novnc_first_messages(4, 4))
@example(data=viewer.handshake(3, shared=False) + b"\x05\x00")
def test_any_viewer_handshake_parses_or_raises(data: bytes) -> None:
    def outcome(size: int) -> tuple[list[Event], bytes, bytes] | str:
        try:
            events, sent, hs, rest = _run(chunked(data, size), eof=True)
        except RemoteProtocolError as exc:
            return type(exc).__name__
        done = hs.state is RelayHandshakeState.DONE
        return events, sent, (hs.take_unparsed() if done else b"") + rest

    whole = outcome(max(len(data), 1))
    assert outcome(1) == whole
    assert outcome(7) == whole
