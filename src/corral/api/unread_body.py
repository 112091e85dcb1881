"""Answers given before the request body was read close the connection.

uvicorn reads and discards what is left of a body after the answer, to keep the connection; for
an upload refused at its first bytes (no room, not an ISO, a bad name) the client would then send
gigabytes for nothing, and most clients (httpx, browsers) read the answer only after sending.
``Connection: close`` on such an answer makes the server close, the client's next write fail, and
the client read the answer at once (a pure ASGI middleware: nothing is buffered).
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _has_body(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    length = headers.get("content-length", "")
    digits = length.isascii() and length.isdigit()  # not "²" (latin-1): int() refuses it
    return (digits and int(length) > 0) or "transfer-encoding" in headers


class CloseUnreadBody:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        finished = False

        async def tracking_receive() -> Message:
            nonlocal finished
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                finished = True
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not finished:
                MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        await self.app(scope, tracking_receive, closing_send)
