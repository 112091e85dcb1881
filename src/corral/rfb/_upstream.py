"""The client handshake over an asyncio transport, shared by ``RFBClient`` and relays.

A relay (a console proxy) connects to the real server, runs the handshake up to ServerInit
(including VeNCrypt's TLS), and then passes bytes through: the viewer sets its own pixel format
and encodings, so nothing the client protocol queues after ``Connected`` may reach the server.
For the server → viewer direction ``Upstream.server_stream()`` hands over the chunks as the
transport received them, without a ``StreamReader`` copying each into its buffer and out again.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast

from ._connection import RFBConnection
from ._errors import AuthenticationFailed, RFBTimeout, TruncatedStream
from ._events import NEED_DATA, PAUSED, Connected, TLSRequired
from ._transport import StreamTransport, Transport, map_transport_errors


async def run_handshake(
    transport: Transport,
    conn: RFBConnection,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
) -> Connected:
    """Drive ``conn`` until ``Connected``. What it queues at ``Connected`` (SetPixelFormat,
    SetEncodings) is left in ``conn.data_to_send()`` for the caller to send or drop."""
    tls_done = False
    while True:
        try:
            event = conn.next_event()
        except TruncatedStream:
            if tls_done:
                raise AuthenticationFailed(
                    "the VNC server closed the connection right after the TLS handshake: "
                    "it probably rejected the client certificate"
                ) from None
            raise
        if isinstance(event, Connected):
            return event
        if out := conn.data_to_send():
            await transport.write(out)
        if event is NEED_DATA:
            conn.receive_data(await transport.read())
        elif isinstance(event, TLSRequired) or event is PAUSED:
            if ssl_context is None:
                raise AuthenticationFailed("the server wants TLS but no SSL context was given")
            await transport.start_tls(ssl_context, server_hostname)
            conn.tls_started()
            tls_done = True


#: Reading from the server pauses while this much waits for the relay, resumes below the low mark.
_HIGH_WATER, _LOW_WATER = 1 << 20, 1 << 18
#: Chunks waiting together are joined into one read up to this size (fewer, larger WebSocket
#: messages); a larger chunk is handed over as it is (no copy).
_JOIN_BELOW = 1 << 16


class ServerStream:
    """The server's bytes for a relay, in the chunks the transport received (``read``)."""

    def __init__(self, first: bytes) -> None:
        self._chunks: deque[bytes] = deque([first] if first else [])
        self._size = len(first)
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._transport: asyncio.Transport | None = None
        self._paused = False

    def _attach(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._flow()

    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        self._flow()
        self._wake()

    def _end(self, exc: BaseException | None) -> None:
        self._eof = True
        self._error = self._error or exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _flow(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if not self._paused and self._size >= _HIGH_WATER:
            self._paused = True
            transport.pause_reading()
        elif self._paused and self._size <= _LOW_WATER:
            self._paused = False
            transport.resume_reading()

    async def read(self) -> bytes:
        """The next bytes from the server; ``b""`` once it closed the connection (raises
        what broke it, if it broke)."""
        while not self._chunks:
            if self._eof:
                if self._error is not None:
                    raise self._error
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._chunks.popleft()
        if len(data) < _JOIN_BELOW and self._chunks:
            parts = [data]
            size = len(data)
            while self._chunks and size + len(self._chunks[0]) <= _JOIN_BELOW:
                size += len(self._chunks[0])
                parts.append(self._chunks.popleft())
            data = b"".join(parts)
        self._size -= len(data)
        self._flow()
        return data


class _RelayableProtocol(asyncio.StreamReaderProtocol):
    """asyncio's stream protocol (as ``asyncio.open_connection`` sets it up), which can send
    the server's bytes to a ``ServerStream`` instead of its StreamReader."""

    def __init__(self, reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(reader, loop=loop)
        self.stream: ServerStream | None = None
        self.eof = False

    def data_received(self, data: bytes) -> None:
        if self.stream is None:
            super().data_received(data)
        else:
            self.stream._feed(data)

    def eof_received(self) -> bool:
        self.eof = True
        if self.stream is not None:
            self.stream._end(None)
        return bool(super().eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if self.stream is not None:
            self.stream._end(exc)
        super().connection_lost(exc)


async def _open_streams(**connect: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection`` with a ``_RelayableProtocol``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20, loop=loop)
    protocol = _RelayableProtocol(reader, loop)
    transport, _ = await loop.create_connection(lambda: protocol, **connect)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


@dataclass
class Upstream:
    """A server connection past ServerInit, ready to relay: the streams (TLS-wrapped if
    VeNCrypt asked for it), the server's ``Connected``, and server bytes already read after
    ServerInit (relay them first, or read everything through ``server_stream()``)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    connected: Connected
    unparsed: bytes
    _stream: ServerStream | None = field(default=None, init=False, repr=False)

    async def server_stream(self) -> ServerStream:
        """Everything the server sends from now on, ``unparsed`` and what the reader held
        first; ``reader`` is not to be read any more (``writer`` works as before). Upstreams
        opened here get the transport's chunks handed over as they come; others are read
        through ``reader``. Calling it again returns the same stream."""
        if self._stream is not None:
            return self._stream
        protocol = self.writer.transport.get_protocol()
        if not isinstance(protocol, _RelayableProtocol):
            self._stream = _ReaderStream(self.unparsed, self.reader)
            return self._stream
        # Nothing else feeds the reader now: take what it still holds, without waiting.
        self.reader.feed_eof()
        stream = self._stream = ServerStream(self.unparsed + await self.reader.read())
        protocol.stream = stream
        stream._attach(cast(asyncio.Transport, self.writer.transport))
        if protocol.eof:
            stream._end(None)
        return stream

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):  # it may have failed already
            await self.writer.wait_closed()


async def open_upstream(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    password: str | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109 - an explicit bound, enforced inside
) -> Upstream:
    """Handshake with a server for a relay; closes the streams if it fails."""
    transport = StreamTransport(reader, writer)
    conn = RFBConnection(tls=ssl_context is not None, password=password)
    try:
        async with asyncio.timeout(timeout):
            connected = await run_handshake(transport, conn, ssl_context, server_hostname)
    except TimeoutError:
        await transport.close()
        raise RFBTimeout(f"the VNC handshake did not finish within {timeout} s") from None
    except BaseException:
        await transport.close()
        raise
    conn.data_to_send()  # the client's own pixel format and encodings: the viewer sends its own
    reader, writer = transport.streams()
    return Upstream(reader, writer, connected, conn.take_unparsed())


class _ReaderStream(ServerStream):
    """``ServerStream`` over a StreamReader (streams opened elsewhere)."""

    def __init__(self, first: bytes, reader: asyncio.StreamReader) -> None:
        super().__init__(first)
        self._reader = reader

    async def read(self) -> bytes:
        if self._chunks:
            return await super().read()
        return await self._reader.read(1 << 18)


async def open_upstream_socket(
    sock: socket.socket,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - an explicit bound, enforced inside
    **options: object,
) -> Upstream:
    """``open_upstream`` over an already connected socket (e.g. libvirt's openGraphicsFD);
    the upstream owns and closes it from now on."""
    try:
        with map_transport_errors("taking over a VNC socket"):
            reader, writer = await _open_streams(sock=sock)
    except BaseException:
        sock.close()
        raise
    return await open_upstream(reader, writer, timeout=timeout, **options)  # type: ignore[arg-type]


async def open_upstream_tcp(
    host: str,
    port: int,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - an explicit bound, enforced inside
    **options: object,
) -> Upstream:
    """``open_upstream`` over a new TCP connection (e.g. VeNCrypt to a remote host: pass
    ``ssl_context`` and ``server_hostname``)."""
    with map_transport_errors(f"connecting to {host}:{port}"):
        reader, writer = await asyncio.wait_for(_open_streams(host=host, port=port), timeout)
    return await open_upstream(reader, writer, timeout=timeout, **options)  # type: ignore[arg-type]
