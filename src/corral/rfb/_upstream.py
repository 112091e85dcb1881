"""The client handshake over an asyncio transport, shared by ``RFBClient`` and relays.

A relay (a console proxy) connects to the real server, runs the handshake up to ServerInit
(including VeNCrypt's TLS), and then passes bytes through: the viewer sets its own pixel format
and encodings, so nothing the client protocol queues after ``Connected`` may reach the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from dataclasses import dataclass

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


@dataclass
class Upstream:
    """A server connection past ServerInit, ready to relay: the streams (TLS-wrapped if
    VeNCrypt asked for it), the server's ``Connected``, and server bytes already read after
    ServerInit (relay them first)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    connected: Connected
    unparsed: bytes

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
            reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
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
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=1 << 20), timeout
        )
    return await open_upstream(reader, writer, timeout=timeout, **options)  # type: ignore[arg-type]
