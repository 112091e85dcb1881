"""``Upstream.server_stream()``: a relay gets every server byte after ServerInit, in order, the
writer keeps working, reading pauses while the relay lags, and the end (or a reset) shows."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from corral.rfb import Upstream, open_upstream, open_upstream_tcp
from corral.rfb._upstream import _JOIN_BELOW, ServerStream
from tests.unit.rfb import _wire as wire

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def _server(serve: Serve) -> AsyncIterator[int]:
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def _handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The server's side, step by step: 3.8, security None, then ServerInit (4x2)."""
    writer.write(b"RFB 003.008\n")
    await reader.readexactly(12)
    writer.write(b"\x01\x01")
    await reader.readexactly(1)
    writer.write(b"\0\0\0\0")
    await reader.readexactly(1)  # ClientInit
    writer.write(wire.handshake(4, 2)[18:])


async def _until(reader: asyncio.StreamReader, marker: bytes) -> None:
    seen = b""
    while marker not in seen:
        chunk = await reader.read(4096)
        assert chunk, "the client hung up"
        seen += chunk


async def _read_all(upstream: Upstream) -> bytes:
    stream = await upstream.server_stream()
    out = bytearray()
    async with asyncio.timeout(10):
        while data := await stream.read():
            out += data
    return bytes(out)


async def test_every_byte_after_server_init_arrives_in_order_and_the_writer_works() -> None:
    early, late = b"sent with ServerInit", os.urandom(3 << 20)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _handshake(reader, writer)
        await asyncio.sleep(0.05)  # after the client's handshake: the bytes wait in its reader
        writer.write(early)
        await _until(reader, b"go")  # written by the relay after the hand-over
        writer.write(late)
        await writer.drain()
        writer.close()

    async with _server(serve) as port:
        upstream = await open_upstream_tcp("127.0.0.1", port)
        await asyncio.sleep(0.2)
        stream = await upstream.server_stream()
        assert upstream.unparsed == b""
        upstream.writer.write(b"go")
        await upstream.writer.drain()
        out = bytearray()
        async with asyncio.timeout(10):
            while data := await stream.read():
                out += data
        assert bytes(out) == early + late
        async with asyncio.timeout(5):
            await upstream.close()


async def test_reading_pauses_while_the_relay_lags_and_resumes() -> None:
    payload = os.urandom(6 << 20)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _handshake(reader, writer)
        await _until(reader, b"go")
        writer.write(payload)
        await writer.drain()
        writer.close()

    async with _server(serve) as port:
        upstream = await open_upstream_tcp("127.0.0.1", port)
        stream = await upstream.server_stream()
        upstream.writer.write(b"go")
        transport = upstream.writer.transport
        async with asyncio.timeout(10):
            # No event says so: poll until the stream paused reading (over 1 MiB waiting).
            while transport.is_reading():  # type: ignore[attr-defined]  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            out = bytearray()
            while data := await stream.read():
                out += data
        assert out == payload
        await upstream.close()


async def test_a_reset_after_the_handshake_raises() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _handshake(reader, writer)
        await _until(reader, b"go")
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async with _server(serve) as port:
        upstream = await open_upstream_tcp("127.0.0.1", port)
        stream = await upstream.server_stream()
        upstream.writer.write(b"go")
        with pytest.raises(ConnectionError):
            async with asyncio.timeout(10):
                while await stream.read():
                    pass
        await upstream.close()


async def test_a_server_gone_before_the_hand_over_ends_the_stream() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _handshake(reader, writer)
        await asyncio.sleep(0.05)
        writer.write(b"last words")
        writer.close()

    async with _server(serve) as port:
        upstream = await open_upstream_tcp("127.0.0.1", port)
        await asyncio.sleep(0.2)
        assert upstream.unparsed == b""
        assert await _read_all(upstream) == b"last words"
        await upstream.close()


async def test_streams_opened_elsewhere_are_read_through_their_reader() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _handshake(reader, writer)
        writer.write(b"early")
        await asyncio.sleep(0.05)
        writer.write(b"late")
        writer.close()

    async with _server(serve) as port:
        upstream = await open_upstream(*await asyncio.open_connection("127.0.0.1", port))
        assert await _read_all(upstream) == b"earlylate"
        await upstream.close()


async def test_small_waiting_chunks_are_joined_and_large_ones_kept_as_they_are() -> None:
    stream = ServerStream(b"")
    large = os.urandom(_JOIN_BELOW)
    for chunk in (b"a" * 10, b"b" * 20, large, b"c"):
        stream._feed(chunk)
    assert await stream.read() == b"a" * 10 + b"b" * 20
    assert await stream.read() is large
    assert await stream.read() == b"c"
    stream._end(None)
    assert await stream.read() == b""
