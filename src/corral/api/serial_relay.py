"""The serial console's relay: console bytes both ways over a WebSocket (binary frames), for one
reader of the VM's shared console (``SerialTap``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket, WebSocketDisconnect

from corral.errors import CorralError
from corral.services.vms.serial_hub import SerialTap


async def relay_serial(
    ws: WebSocket,
    tap: SerialTap,
    *,
    rights_end: Callable[[], Awaitable[str]] | None = None,
) -> None:
    """Pipe console bytes both ways (a view-only reader's input is dropped) until either side
    closes or ``rights_end()`` returns."""

    async def to_client() -> None:
        while data := await tap.read():
            await ws.send_bytes(data)

    async def to_console() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes") or (message.get("text") or "").encode()
            if data and tap.writer:
                await tap.write(data)

    tasks: list[asyncio.Future[object]] = [
        asyncio.ensure_future(to_client()),
        asyncio.ensure_future(to_console()),
    ]
    if rights_end is not None:
        tasks.append(asyncio.ensure_future(rights_end()))
    code, reason = 1000, ""
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
            code, reason = 1008, str(tasks[2].result())  # the caller's session or rights ended
        elif tasks[0] in done:
            reason = tap.reason
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # The client may be gone already (it hung up first): closing then is a no-op.
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close(code=code, reason=reason[:120])
