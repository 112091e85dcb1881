"""``RFBClient``: the asyncio VNC client over a ``Transport``."""

# The public API takes explicit ``timeout=`` arguments (callers asked for exactly that), and
# each one is enforced with ``asyncio.timeout`` inside.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from PIL import Image
from websockets.asyncio.client import connect as ws_connect

from ._connection import RFBConnection
from ._errors import (
    LocalProtocolError,
    RFBError,
    RFBTimeout,
    TruncatedStream,
)
from ._events import (
    NEED_DATA,
    Bell,
    ClientCutText,
    ClipboardProvided,
    Connected,
    ConnectionClosed,
    CursorShape,
    DesktopResized,
    Event,
    FramebufferUpdated,
    FramebufferUpdateRequest,
    KeyEvent,
    LEDState,
    PointerEvent,
    QEMUKeyEvent,
    Rect,
    ServerCutText,
)
from ._keys import SHIFT, Key, key_for_char, parse_combo
from ._match import find_template
from ._transport import StreamTransport, Transport, WebSocketTransport, map_transport_errors
from ._upstream import run_handshake

U8Array = npt.NDArray[np.uint8]


class RFBClient:
    """An open VNC session. Create it with one of the ``connect_*`` class methods.

    A background task reads from the server and applies updates to the framebuffer; the
    methods here send input and wait (each with a timeout) for updates.
    """

    def __init__(
        self,
        transport: Transport,
        conn: RFBConnection,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self.conn = conn
        self._transport = transport
        self._ssl_context = ssl_context
        self._server_hostname = server_hostname
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._updates = 0
        self._error: BaseException | None = None
        self._closed = False
        # Set by finish_input(): from then on nothing may be written (the socket is
        # half-closed), whatever the server still sends.
        self._input_finished = False
        self.connected: Connected | None = None
        self.cursor: CursorShape | None = None
        self.leds: LEDState | None = None
        self.clipboard: str | None = None
        self.bells = 0
        self.last_update_rects: tuple[Rect, ...] = ()
        self._size = (0, 0)

    # --- opening ----------------------------------------------------------------------------
    @classmethod
    async def connect_unix(cls, path: str, *, timeout: float = 10.0, **options: Any) -> Self:
        """Connect to a UNIX socket (QEMU ``-vnc unix:PATH``); options go to ``RFBConnection``
        (``password``, ``encodings``, ``limits``…) plus ``ssl_context``/``server_hostname``."""
        with map_transport_errors(f"connecting to {path}"):
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), timeout)
        return await cls._open(StreamTransport(reader, writer), timeout, options)

    @classmethod
    async def connect_tcp(
        cls, host: str, port: int = 5900, *, timeout: float = 10.0, **options: Any
    ) -> Self:
        with map_transport_errors(f"connecting to {host}:{port}"):
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        options.setdefault("server_hostname", host)
        return await cls._open(StreamTransport(reader, writer), timeout, options)

    @classmethod
    async def connect_tls_vencrypt(
        cls,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        *,
        server_hostname: str | None = None,
        timeout: float = 10.0,
        **options: Any,
    ) -> Self:
        """TCP, then VeNCrypt X509None/X509Vnc (give ``password`` for X509Vnc)."""
        return await cls.connect_tcp(
            host,
            port,
            timeout=timeout,
            ssl_context=ssl_context,
            server_hostname=server_hostname or host,
            **options,
        )

    @classmethod
    async def connect_websocket(
        cls,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        ssl: ssl.SSLContext | None = None,
        subprotocols: tuple[str, ...] = ("binary",),
        timeout: float = 10.0,
        **options: Any,
    ) -> Self:
        """RFB over a WebSocket (``ws://`` or ``wss://``), e.g. through a console proxy."""
        with map_transport_errors(f"opening the WebSocket {url}"):
            ws = await asyncio.wait_for(
                ws_connect(
                    url,
                    additional_headers=headers,
                    ssl=ssl,
                    subprotocols=[*subprotocols],  # type: ignore[list-item]
                    max_size=64 << 20,
                    compression=None,
                ),
                timeout,
            )
        return await cls._open(WebSocketTransport(ws), timeout, options)

    @classmethod
    async def connect_socket(
        cls, sock: socket.socket, *, timeout: float = 10.0, **options: Any
    ) -> Self:
        """Speak RFB over an already connected stream socket (e.g. one that libvirt's
        ``openGraphicsFD`` handed over); the client owns and closes it from now on."""
        try:
            with map_transport_errors("taking over a VNC socket"):
                reader, writer = await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise
        return await cls._open(StreamTransport(reader, writer), timeout, options)

    @classmethod
    async def _open(cls, transport: Transport, timeout: float, options: dict[str, Any]) -> Self:
        ssl_context = options.pop("ssl_context", None)
        server_hostname = options.pop("server_hostname", None)
        conn = RFBConnection(tls=ssl_context is not None, **options)
        client = cls(transport, conn, ssl_context=ssl_context, server_hostname=server_hostname)
        try:
            async with asyncio.timeout(timeout):
                await client._handshake()
        except TimeoutError:
            await transport.close()
            raise RFBTimeout(f"the VNC handshake did not finish within {timeout} s") from None
        except BaseException:
            await transport.close()
            raise
        client._reader = asyncio.create_task(client._read_loop())
        await client.request_update(incremental=False)
        return client

    async def _handshake(self) -> None:
        event = await run_handshake(
            self._transport, self.conn, self._ssl_context, self._server_hostname
        )
        if out := self.conn.data_to_send():
            await self._transport.write(out)  # our pixel format and encodings
        self.connected = event
        self._size = (event.width, event.height)

    async def _read_loop(self) -> None:
        try:
            while True:
                # Drain first: the handshake may have left update bytes in the buffer.
                while (event := self.conn.next_event()) is not NEED_DATA:
                    if isinstance(event, ConnectionClosed):
                        raise TruncatedStream("the VNC server closed the connection")
                    await self._handle(event)
                out = self.conn.data_to_send()
                if out and not self._input_finished:
                    await self._transport.write(out)
                self.conn.receive_data(await self._transport.read())
        except Exception as exc:  # noqa: BLE001 - top of the reader task: hand it to waiters
            self._error = exc
        async with self._changed:
            self._changed.notify_all()

    async def _handle(self, event: Event) -> None:
        if isinstance(event, DesktopResized):
            if (event.width, event.height) != self._size:
                # A real resize invalidates the whole screen: ask for all of it again.
                self._size = (event.width, event.height)
                if not self._input_finished:
                    await self.request_update(incremental=False)
        elif isinstance(event, FramebufferUpdated) and event.rects:
            self.last_update_rects = event.rects
            async with self._changed:
                self._updates += 1
                self._changed.notify_all()
        elif isinstance(event, CursorShape):
            self.cursor = event
        elif isinstance(event, LEDState):
            self.leds = event
        elif isinstance(event, ServerCutText) or (
            isinstance(event, ClipboardProvided) and event.text is not None
        ):
            self.clipboard = event.text
        elif isinstance(event, Bell):
            self.bells += 1

    # --- closing ----------------------------------------------------------------------------
    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._transport.close()

    async def finish_input(self, timeout: float = 10.0) -> None:
        """Half-close and wait until the server closes too: it has then acted on all input
        sent before. Needed because QEMU discards what it has not read yet when a client hangs
        up, so ``close()`` right after typing can lose keys. (A WebSocket cannot half-close:
        there this returns at once.) Call ``close()`` afterwards."""
        self._check()
        if self._input_finished:
            return
        self._input_finished = True
        if self._reader is None or not await self._transport.write_eof():
            return
        done, _ = await asyncio.wait({self._reader}, timeout=timeout)
        if not done:
            raise RFBTimeout(f"the VNC server did not close the connection within {timeout} s")
        if self._error is not None and not isinstance(self._error, TruncatedStream):
            raise self._error

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.close()

    # --- framebuffer ------------------------------------------------------------------------
    @property
    def width(self) -> int:
        return self.conn.framebuffer.width

    @property
    def height(self) -> int:
        return self.conn.framebuffer.height

    @property
    def framebuffer(self) -> U8Array:
        """A copy of the current screen as ``(height, width, 3)`` uint8 RGB."""
        return self.conn.framebuffer.rgb().copy()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise RFBError("the VNC client is closed")

    async def _send(self, *messages: Any) -> None:
        if self._input_finished:
            raise LocalProtocolError(
                "input is finished (finish_input() half-closed the connection): open a new "
                "session to send more"
            )
        self._check()
        await self._transport.write(b"".join(self.conn.send(m) for m in messages))

    async def request_update(self, incremental: bool = True) -> None:
        fb = self.conn.framebuffer
        await self._send(FramebufferUpdateRequest(0, 0, fb.width, fb.height, incremental))

    async def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout), self._changed:
                while not predicate():
                    self._check()
                    await self._changed.wait()
        except TimeoutError:
            raise RFBTimeout(f"no {what} from the VNC server within {timeout} s") from None
        self._check()

    async def refresh(self, incremental: bool = False, timeout: float = 10.0) -> None:
        """Request an update and wait until the server has sent one."""
        seen = self._updates
        await self.request_update(incremental)
        await self._wait(lambda: self._updates > seen, timeout, "framebuffer update")

    async def screenshot(self, timeout: float = 10.0) -> U8Array:
        """A fresh full-screen capture as ``(height, width, 3)`` uint8 RGB."""
        await self.refresh(incremental=False, timeout=timeout)
        return self.framebuffer

    async def screenshot_png(self, timeout: float = 10.0) -> bytes:
        out = io.BytesIO()
        Image.fromarray(await self.screenshot(timeout)).save(out, format="PNG")
        return out.getvalue()

    async def wait_for_image(self, template: U8Array, timeout: float = 30.0) -> tuple[int, int]:
        """Wait until ``template`` (``(h, w, 3|4)`` uint8) appears exactly; its ``(x, y)``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self.refresh(incremental=False, timeout=timeout)
        while True:
            found = find_template(self.conn.framebuffer.rgb(), template)
            if found is not None:
                return found
            left = deadline - loop.time()
            if left <= 0:
                raise RFBTimeout(
                    f"the image ({template.shape[1]}x{template.shape[0]}) did not appear on "
                    f"the screen within {timeout} s"
                )
            try:
                await self.refresh(incremental=True, timeout=left)
            except RFBTimeout:
                continue

    # --- input ------------------------------------------------------------------------------
    def _key_messages(self, key: Key, down: bool) -> Any:
        if self.conn.server_supports_qemu_key_events and key.scancode:
            return QEMUKeyEvent(key.keysym, key.scancode, down)
        return KeyEvent(key.keysym, down)

    async def press(self, combo: str) -> None:
        """Press and release a key or combination: ``"enter"``, ``"ctrl-alt-delete"``, ``"a"``."""
        keys = parse_combo(combo)
        downs = [self._key_messages(k, True) for k in keys]
        ups = [self._key_messages(k, False) for k in reversed(keys)]
        await self._send(*downs, *ups)

    @staticmethod
    def key_events(text: str = "", combos: Iterable[str] = ()) -> int:
        """How many key events ``type_text(text)`` and ``press(combo)`` for each combo send;
        raises ``LocalProtocolError`` where they would, so a caller can refuse bad input before
        sending any of it, and pace its input (QEMU passes one key event on per 10 ms)."""
        events = 0
        for char in text:
            events += 4 if key_for_char(char).shift else 2
        for combo in combos:
            events += 2 * len(parse_combo(combo))
        return events

    async def type_text(self, text: str) -> None:
        """Type ``text`` as key presses (US layout; Shift pressed for shifted characters)."""
        messages: list[Any] = []
        for char in text:
            key = key_for_char(char)
            if key.shift:
                messages.append(self._key_messages(SHIFT, True))
            messages += [self._key_messages(key, True), self._key_messages(key, False)]
            if key.shift:
                messages.append(self._key_messages(SHIFT, False))
        await self._send(*messages)

    async def pointer(self, x: int, y: int, buttons: int = 0) -> None:
        await self._send(PointerEvent(x, y, buttons))

    async def click(self, x: int, y: int, button: int = 1) -> None:
        mask = 1 << (button - 1)
        await self._send(PointerEvent(x, y, 0), PointerEvent(x, y, mask), PointerEvent(x, y, 0))

    async def set_clipboard(self, text: str) -> None:
        await self._send(ClientCutText(text))
