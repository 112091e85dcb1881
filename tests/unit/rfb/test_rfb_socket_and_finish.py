"""``RFBClient.connect_socket`` (a socket handed over, e.g. by libvirt), ``key_events`` and
``finish_input`` against a scripted server on a real socket pair."""

from __future__ import annotations

import asyncio
import socket
import struct

import numpy as np
import pytest

from corral.rfb import Encoding, LocalProtocolError, RFBClient, RFBConnectionError, RFBTimeout
from tests.unit.rfb import _wire as wire
from tests.unit.rfb.test_rfb_client import _client_messages

FULL_REQUEST = b"\x03\x00\x00\x00\x00\x00\x00\x04\x00\x02"  # incremental=0, 4x2


async def _serve(sock: socket.socket, received: bytearray, *, close_at_eof: bool = True) -> None:
    """Handshake, then answer full update requests; at the client's EOF close (like QEMU)."""
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(wire.handshake(4, 2))
    img = np.full((2, 4), 0x00FF00, np.uint32)
    while chunk := await reader.read(4096):
        received.extend(chunk)
        for _ in range(chunk.count(FULL_REQUEST)):
            writer.write(wire.update(wire.rect(0, 0, 4, 2, Encoding.RAW, wire.raw(img))))
        await writer.drain()
    if close_at_eof:
        writer.close()
    else:
        await asyncio.Event().wait()  # a server that never hangs up (cancelled by the test)


async def test_connect_socket_speaks_rfb_over_a_given_socket() -> None:
    ours, theirs = socket.socketpair()
    received = bytearray()
    server = asyncio.create_task(_serve(theirs, received))
    async with await RFBClient.connect_socket(ours, timeout=5) as client:
        assert (client.width, client.height) == (4, 2)
        shot = await client.screenshot(timeout=5)
        assert shot.shape == (2, 4, 3) and (shot[..., 1] == 255).all()
    await asyncio.wait_for(server, 5)
    assert ours.fileno() == -1  # the client owned the socket and closed it


async def test_connect_socket_closes_the_socket_when_it_cannot_use_it() -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises((RFBConnectionError, ValueError)):
        await RFBClient.connect_socket(udp, timeout=5)
    assert udp.fileno() == -1


async def test_handshake_timeout_on_a_silent_socket() -> None:
    ours, theirs = socket.socketpair()
    with theirs, pytest.raises(RFBTimeout):
        await RFBClient.connect_socket(ours, timeout=0.2)


async def test_finish_input_returns_after_the_server_has_read_everything() -> None:
    ours, theirs = socket.socketpair()
    received = bytearray()
    server = asyncio.create_task(_serve(theirs, received))
    client = await RFBClient.connect_socket(ours, timeout=5)
    try:
        await client.type_text("Ab")
        await client.finish_input(timeout=5)
        # The server had closed, so it had read up to our EOF: every key event is there.
        assert server.done()
        keys = [struct.unpack(">BxxI", m[1:]) for m in _client_messages(bytes(received))
                if m[0] == 4]  # fmt: skip
        assert keys == [(1, 0xFFE1), (1, ord("A")), (0, ord("A")), (0, 0xFFE1),
                        (1, ord("b")), (0, ord("b"))]  # fmt: skip
    finally:
        await client.close()


async def test_finish_input_times_out_if_the_server_never_closes() -> None:
    ours, theirs = socket.socketpair()
    server = asyncio.create_task(_serve(theirs, bytearray(), close_at_eof=False))
    client = await RFBClient.connect_socket(ours, timeout=5)
    try:
        with pytest.raises(RFBTimeout, match="did not close"):
            await client.finish_input(timeout=0.2)
    finally:
        await client.close()
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server


def test_key_events_counts_and_checks_input() -> None:
    assert RFBClient.key_events("ab") == 4  # down and up each
    assert RFBClient.key_events("A!") == 8  # Shift down/up around each
    assert RFBClient.key_events("\n\t ") == 6
    assert RFBClient.key_events(combos=["ctrl-alt-delete", "enter"]) == 8
    with pytest.raises(LocalProtocolError, match="control character"):
        RFBClient.key_events("a\x07")
    with pytest.raises(LocalProtocolError, match="unknown key 'foo'"):
        RFBClient.key_events(combos=["ctrl-foo"])


async def _serve_then_talk_after_eof(sock: socket.socket, after_eof: bytes) -> None:
    """Like QEMU with a changing screen: at the client's EOF it still sends ``after_eof`` (an
    update that makes a client want to answer), then closes."""
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(wire.handshake(4, 2))
    while await reader.read(4096):
        pass
    writer.write(after_eof)
    await writer.drain()
    await asyncio.sleep(0.05)  # let the client react before the end of the stream
    writer.close()


_RESIZE = wire.update(wire.rect(0, 0, 8, 4, Encoding.DESKTOP_SIZE))
# A server's Extended Clipboard capabilities: the client answers with its own.
_CLIPBOARD_CAPS = struct.pack(">BxxxiII", 3, -8, 0x01000001, 1024)


@pytest.mark.parametrize("after_eof", [_RESIZE, _CLIPBOARD_CAPS], ids=["resize", "clipboard"])
async def test_finish_input_never_writes_after_the_half_close(after_eof: bytes) -> None:
    ours, theirs = socket.socketpair()
    server = asyncio.create_task(_serve_then_talk_after_eof(theirs, after_eof))
    client = await RFBClient.connect_socket(ours, timeout=5)
    try:
        await client.type_text("x")
        await client.finish_input(timeout=5)  # was: RuntimeError "write() after write_eof()"
        with pytest.raises(LocalProtocolError, match="finish_input"):
            await client.type_text("y")
    finally:
        await client.close()
    await asyncio.wait_for(server, 5)
