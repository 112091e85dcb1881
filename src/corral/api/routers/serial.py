"""The serial console over a WebSocket: binary frames carry console bytes both ways."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from corral.api.deps import authenticate
from corral.errors import CorralError
from corral.model.auth import Role
from corral.services.runtime import Services
from corral.virt import SerialConsole

log = logging.getLogger(__name__)

router = APIRouter(tags=["vms"])

# WebSocket close codes (RFC 6455 section 7.4 and the 4000-4999 private range).
_POLICY = 1008
_NOT_AVAILABLE = 4404


def _bearer(ws: WebSocket) -> str | None:
    header = ws.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token else None


@router.websocket("/vms/{name}/serial", name="vm.serial")
async def serial_console(ws: WebSocket, name: str) -> None:
    svc: Services = ws.app.state.services
    try:
        principal = await authenticate(ws, _bearer(ws))
        principal.require(Role.OPERATOR)
    except CorralError as exc:
        await ws.close(code=_POLICY, reason=exc.message[:120])
        return
    try:
        console = await svc.extras.open_serial(name)
    except CorralError as exc:
        await svc.audit.record(principal.user, "vm.serial", name, f"error: {exc.message}")
        await ws.close(code=_NOT_AVAILABLE, reason=exc.message[:120])
        return
    await svc.audit.record(principal.user, "vm.serial", name, "ok")
    await ws.accept()
    try:
        await _relay(ws, console)
    finally:
        await console.close()


async def _relay(ws: WebSocket, console: SerialConsole) -> None:
    async def to_client() -> None:
        while data := await console.read():
            await ws.send_bytes(data)

    async def to_console() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes") or (message.get("text") or "").encode()
            if data:
                await console.write(data)

    tasks = [asyncio.create_task(to_client()), asyncio.create_task(to_console())]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            if (exc := task.exception()) is not None and not isinstance(
                exc, WebSocketDisconnect | CorralError
            ):
                raise exc
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(RuntimeError):
            await ws.close()
