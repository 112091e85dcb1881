"""The serial console's relay: console bytes both ways over a WebSocket (binary frames)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from corral.errors import CorralError


class ConsoleBytes(Protocol):
    """What the relay needs of a serial console (``services`` hands out virt's SerialConsole;
    the API does not import ``virt/``)."""

    async def read(self) -> bytes: ...

    async def write(self, data: bytes) -> None: ...


async def relay_serial(
    ws: WebSocket,
    console: ConsoleBytes,
    *,
    view_only: bool = False,
    rights_end: Callable[[], Awaitable[str]] | None = None,
) -> None:
    """Pipe console bytes both ways (a viewer's input is dropped) until either side closes or
    ``rights_end()`` returns."""

    async def to_client() -> None:
        while data := await console.read():
            await ws.send_bytes(data)

    async def to_console() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes") or (message.get("text") or "").encode()
            if data and not view_only:
                await console.write(data)

    tasks: list[asyncio.Future[object]] = [
        asyncio.ensure_future(to_client()),
        asyncio.ensure_future(to_console()),
    ]
    if rights_end is not None:
        tasks.append(asyncio.ensure_future(rights_end()))
    code = 1000
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            if (exc := task.exception()) is not None and not isinstance(
                exc, WebSocketDisconnect | CorralError
            ):
                raise exc
        if len(tasks) == 3 and tasks[2] in done:
            code = 1008  # the caller's session or rights ended
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # The client may be gone already (it hung up first): closing then is a no-op.
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close(code=code)
