"""The serial console over a WebSocket: binary frames carry console bytes both ways."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from corral.api.deps import authenticate
from corral.api.problems import problem, status_for
from corral.errors import CorralError
from corral.model.auth import Role
from corral.services.runtime import Services
from corral.virt import SerialConsole

log = logging.getLogger(__name__)

router = APIRouter(tags=["vms"])


async def _refuse(ws: WebSocket, exc: CorralError) -> None:
    """Answer the handshake with an HTTP problem+json, so clients can show the reason; servers
    without the denial-response extension get a policy-violation close instead."""
    status, title = status_for(exc)
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(problem(status, title, exc.message))
    else:
        await ws.close(code=1008, reason=exc.message[:120])


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
        await _refuse(ws, exc)
        return
    try:
        console = await svc.vms.serial.open(name)
    except CorralError as exc:
        await svc.audit.record(principal.user, "vm.serial", name, f"error: {exc.message}")
        await _refuse(ws, exc)
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
        # The client may be gone already (it hung up first): closing then is a no-op.
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close()
