"""The console proxy's relay between a browser (noVNC over a WebSocket) and a VM's VNC server.

server → browser: bytes pass through untouched (the encodings noVNC negotiated, Tight or ZRLE,
flow end to end). browser → server: every message is framed (``corral.rfb.ClientMessageReader``)
so a view-only session drops input server-side and a malformed message ends the session. The
relay plays the RFB server toward the browser up to ServerInit (security None: the browser was
authenticated by its ticket); the upstream connection did the real server's security.

The upstream (one of QEMU's VNC client slots) is opened only once the browser has sent its
ClientInit, and a browser that has not within ``handshake_timeout_s`` is closed: sockets that
never speak cost QEMU nothing. The caller's rights are watched from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket, WebSocketDisconnect

from corral.errors import CorralError
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

#: A viewer that has not sent its ClientInit this long after connecting is closed (Settings).
HANDSHAKE_TIMEOUT_S = 10.0

# WebSocket close codes (RFC 6455).
NORMAL, POLICY, UNSUPPORTED_DATA, INTERNAL = 1000, 1008, 1003, 1011


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


async def _viewer_handshake(ws: WebSocket) -> RelayServerHandshake:
    """Play the server toward the viewer up to its ClientInit (state ``SERVER_INIT``)."""
    hs = RelayServerHandshake()
    try:
        await ws.send_bytes(hs.data_to_send())
        while hs.state is not RelayHandshakeState.SERVER_INIT:
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
    return hs


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


async def _session(
    ws: WebSocket,
    open_upstream: Callable[[], Awaitable[Upstream]],
    view_only: bool,
    handshake_timeout_s: float,
) -> tuple[int, str]:
    """The viewer's handshake, then the upstream, then relaying: (close code, why it ended)."""
    try:
        async with asyncio.timeout(handshake_timeout_s):
            hs = await _viewer_handshake(ws)
    except TimeoutError:
        return (
            POLICY,
            f"the viewer did not finish the RFB handshake within {handshake_timeout_s:g} s",
        )
    try:
        upstream = await open_upstream()
    except CorralError as exc:
        return INTERNAL, exc.message
    tasks: list[asyncio.Future[str]] = []
    try:
        hs.send_server_init(upstream.connected.server_init_bytes())
        await ws.send_bytes(hs.data_to_send())
        tasks = [
            asyncio.ensure_future(_to_viewer(ws, upstream)),
            asyncio.ensure_future(_to_server(ws, upstream, hs.take_unparsed(), view_only)),
        ]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return NORMAL, done.pop().result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await upstream.close()


async def relay(
    ws: WebSocket,
    open_upstream: Callable[[], Awaitable[Upstream]],
    *,
    view_only: bool,
    rights_end: Callable[[], Awaitable[str]],
    handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
) -> str:
    """Relay until either side closes, the viewer's handshake times out, or ``rights_end()``
    returns (watched from the start, the handshake included); returns why it ended. The
    WebSocket must be accepted; ``open_upstream()`` (CorralError when it cannot) is called once
    the viewer sent its ClientInit. Everything is closed on return."""
    code, reason = NORMAL, "closed"
    watch = asyncio.ensure_future(rights_end())
    session = asyncio.ensure_future(_session(ws, open_upstream, view_only, handshake_timeout_s))
    try:
        await asyncio.wait((watch, session), return_when=asyncio.FIRST_COMPLETED)
        if watch.done():
            code, reason = POLICY, watch.result()  # the session or the rights ended
        else:
            code, reason = session.result()
    except ViewerGone as exc:
        code, reason = exc.code, exc.reason
    except (WebSocketDisconnect, ConnectionError, OSError) as exc:
        reason = f"connection lost: {exc!r}"
    finally:
        for task in (watch, session):
            task.cancel()
        await asyncio.gather(watch, session, return_exceptions=True)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await ws.close(code=code, reason=reason[:120])
    return reason
