"""Byte transports for the asyncio client: asyncio streams (TCP, UNIX) and WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator
from typing import Protocol

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosedOK, WebSocketException

from ._errors import LocalProtocolError, RFBConnectionError

_READ_SIZE = 1 << 18


class Transport(Protocol):
    async def read(self) -> bytes:
        """Some bytes from the server; ``b""`` at a clean end of stream."""

    async def write(self, data: bytes) -> None: ...

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str | None) -> None: ...

    async def write_eof(self) -> bool:
        """Half-close (no more data from us); False if the transport cannot."""

    async def close(self) -> None: ...


@contextlib.contextmanager
def map_transport_errors(what: str) -> Iterator[None]:
    """Convert the transport's exceptions to ``RFBConnectionError`` at the boundary."""
    try:
        yield
    except ssl.SSLError as exc:
        raise RFBConnectionError(f"TLS failed while {what}: {exc}") from exc
    except (OSError, EOFError, WebSocketException) as exc:
        raise RFBConnectionError(f"connection failed while {what}: {exc}") from exc


class StreamTransport:
    """TCP or UNIX socket, via asyncio streams (TLS with ``StreamWriter.start_tls``)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._eof_sent = False

    async def read(self) -> bytes:
        try:
            with map_transport_errors("reading from the VNC server"):
                return await self._reader.read(_READ_SIZE)
        except RFBConnectionError as exc:
            # A reset or a failed write to a peer that closed is its end of stream: the
            # protocol layer then says whether a message was cut short.
            if isinstance(exc.__cause__, ConnectionResetError | BrokenPipeError):
                return b""
            raise

    async def write(self, data: bytes) -> None:
        if self._eof_sent:
            # asyncio raises RuntimeError here; say whose fault it is instead.
            raise LocalProtocolError("cannot write to the VNC server after half-closing")
        try:
            with map_transport_errors("writing to the VNC server"):
                self._writer.write(data)
                await self._writer.drain()
        except RFBConnectionError as exc:
            # The peer closed: reading reports that (with what was left unfinished), so a
            # failed write must not hide the reason behind "connection lost".
            if not isinstance(exc.__cause__, ConnectionResetError | BrokenPipeError):
                raise

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        with map_transport_errors("starting TLS with the VNC server"):
            await self._writer.start_tls(context, server_hostname=server_hostname)

    def streams(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The streams underneath (after ``start_tls``, the TLS-wrapped ones)."""
        return self._reader, self._writer

    async def write_eof(self) -> bool:
        if not self._writer.can_write_eof():
            return False
        self._eof_sent = True
        with map_transport_errors("closing the VNC connection for writing"):
            self._writer.write_eof()
        return True

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await self._writer.wait_closed()


class WebSocketTransport:
    """RFB inside binary WebSocket messages (websockify, noVNC proxies, Corral's proxy)."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    async def read(self) -> bytes:
        try:
            with map_transport_errors("reading from the WebSocket"):
                message = await self._ws.recv()
        except RFBConnectionError as exc:
            if isinstance(exc.__cause__, ConnectionClosedOK):
                return b""
            raise
        if isinstance(message, str):
            raise RFBConnectionError("the WebSocket peer sent text; RFB needs binary messages")
        return message

    async def write(self, data: bytes) -> None:
        with map_transport_errors("writing to the WebSocket"):
            await self._ws.send(data)

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        raise RFBConnectionError(
            "VeNCrypt TLS inside a WebSocket is not supported: use wss:// for transport security"
        )

    async def write_eof(self) -> bool:
        return False  # a WebSocket closes both ways at once

    async def close(self) -> None:
        with contextlib.suppress(WebSocketException, OSError):
            await self._ws.close()
