"""The console proxy's relay between a browser (noVNC over a WebSocket) and a VM's VNC server.

server → browser: bytes pass through untouched (the encodings noVNC negotiated, Tight or ZRLE,
flow end to end). browser → server: every message is framed (``corral.rfb.ClientMessageReader``)
so a view-only session drops input server-side and a malformed message ends the session. The
relay plays the RFB server toward the browser up to ServerInit (security None: the browser was
authenticated by its ticket); the upstream connection did the real server's security.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket, WebSocketDisconnect

from corral.rfb import (
    NEED_DATA,
    PAUSED,
    ClientMessage,
    ClientMessageKind,
    ConnectionClosed,
    Limits,
    RelayHandshakeState,
    RelayServerHandshake,
    RemoteProtocolError,
    Upstream,
)
from corral.rfb import ClientMessageReader as Reader

log = logging.getLogger(__name__)

#: QEMU closes a connection whose clipboard message is above 1 MiB: refuse the same here.
VIEWER_LIMITS = Limits(max_cut_text_bytes=1 << 20)

# WebSocket close codes (RFC 6455).
NORMAL, POLICY, UNSUPPORTED_DATA = 1000, 1008, 1003


class ViewerGone(Exception):
    """The browser closed or sent something unusable; ``code``/``reason`` for the close."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def _receive(ws: WebSocket) -> bytes:
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        return b""
    data = message.get("bytes")
    if data is None:
        raise ViewerGone(UNSUPPORTED_DATA, "RFB needs binary WebSocket messages")
    return bytes(data)


async def _handshake(ws: WebSocket, upstream: Upstream) -> bytes:
    """Play the server toward the viewer; returns the viewer's bytes already read after it."""
    hs = RelayServerHandshake(upstream.connected.server_init_bytes())
    try:
        await ws.send_bytes(hs.data_to_send())
        while hs.state is not RelayHandshakeState.DONE:
            hs.receive_data(await _receive(ws))
            while hs.next_event() not in (NEED_DATA, PAUSED):
                pass
            if out := hs.data_to_send():
                await ws.send_bytes(out)
    except RemoteProtocolError as exc:
        if out := hs.data_to_send():
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await ws.send_bytes(out)
        raise ViewerGone(POLICY, exc.message) from exc
    return hs.take_unparsed()


async def _to_viewer(ws: WebSocket, upstream: Upstream) -> str:
    # One WebSocket message per chunk received (small ones joined): no copy on the way.
    stream = await upstream.server_stream()
    while data := await stream.read():
        await ws.send_bytes(data)
    return "the VM's display closed the connection (the VM stopped?)"


async def _to_server(ws: WebSocket, upstream: Upstream, unparsed: bytes, view_only: bool) -> str:
    reader = Reader(limits=VIEWER_LIMITS, unparsed=unparsed)
    writer = upstream.writer
    while True:
        try:
            out = _forwardable(reader, view_only)
        except RemoteProtocolError as exc:
            raise ViewerGone(POLICY, exc.message) from exc
        if out is None:
            return "the viewer closed the console"
        if out:
            writer.write(out)
            await writer.drain()
        reader.receive_data(await _receive(ws))


def _forwardable(reader: Reader, view_only: bool) -> bytes | None:
    """The raw bytes of every complete message to pass on (None once the viewer closed)."""
    out: list[bytes] = []
    while (message := reader.next_event()) is not NEED_DATA:
        if isinstance(message, ConnectionClosed):
            return None
        assert isinstance(message, ClientMessage)  # the reader's only other event
        if view_only and (message.changes_guest or message.kind is ClientMessageKind.CLIPBOARD):
            continue  # a viewer watches: no keys, pointer, clipboard, resize or power
        out.append(message.raw)
    return b"".join(out)


async def relay(
    ws: WebSocket,
    upstream: Upstream,
    *,
    view_only: bool,
    rights_end: Callable[[], Awaitable[str]],
) -> str:
    """Relay until either side closes or ``rights_end()`` returns; returns why it ended.
    The WebSocket must be accepted; it and the upstream are closed on return."""
    code, reason = NORMAL, "closed"
    tasks: list[asyncio.Future[str]] = []
    try:
        unparsed = await _handshake(ws, upstream)
        tasks = [
            asyncio.ensure_future(_to_viewer(ws, upstream)),
            asyncio.ensure_future(_to_server(ws, upstream, unparsed, view_only)),
            asyncio.ensure_future(rights_end()),
        ]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finished = done.pop()
        reason = finished.result()
        if finished is tasks[2]:
            code = POLICY  # the session or the rights ended: the console ends with them
    except ViewerGone as exc:
        code, reason = exc.code, exc.reason
    except (WebSocketDisconnect, ConnectionError, OSError) as exc:
        reason = f"connection lost: {exc!r}"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await upstream.close()
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await ws.close(code=code, reason=reason[:120])
    return reason
