"""A ceiling on request bodies (``max_body_bytes``), counted as they arrive, never buffered.

FastAPI reads a JSON or form body whole before validating it: unbounded, one anonymous login
with a 150 MB body made the server hold 600 MB. Here the body's first read fails at once when
``Content-Length`` already says it is too large, and a chunked body fails as soon as the bytes
read pass the limit; either way the app answers 413 (problem+json under the API, a page in the
UI), and ``CloseUnreadBody`` closes the connection instead of reading the rest. Image uploads
stream their bodies into the pool and have their own checks: they are left alone.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: (method, path) of the routes that stream their bodies elsewhere.
STREAMED = (("PUT", re.compile(r"/api/v1/images/[^/]+")),)


def _size(limit: int) -> str:
    if limit % 2**20 == 0:
        return f"{limit // 2**20} MiB"
    if limit % 2**10 == 0:
        return f"{limit // 2**10} KiB"
    return f"{limit} bytes"


class BodyTooLarge(HTTPException):
    """An HTTPException, not a CorralError: raised from ``receive`` inside FastAPI's body
    parsing, which passes HTTPExceptions on and turns anything else into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"the request body is larger than {_size(limit)}, the most Corral reads "
            "(setting `max_body_bytes`); images go through the image upload instead",
        )


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    @staticmethod
    def streamed(scope: Scope) -> bool:
        return any(
            scope["method"] == method and pattern.fullmatch(scope["path"])
            for method, pattern in STREAMED
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.streamed(scope):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        too_large = declared.isdigit() and int(declared) > self.limit
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if too_large:
                raise BodyTooLarge(self.limit)  # before a single byte is read
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited_receive, send)
