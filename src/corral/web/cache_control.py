"""``Cache-Control: no-store`` on every answer but the static assets (pure ASGI middleware).

Pages, fragments and API answers are a user's view of the cluster and may carry secrets (a new
token's secret, a host bundle's keys, a console ticket): no browser or proxy cache may keep
them, to be shown to the next user of the machine or replayed from disk. Corral's own files
under ``/static`` and the pinned packages under ``/vendor`` are the same for everyone.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Paths whose answers are the same for everyone and carry nothing secret.
CACHEABLE_PREFIXES = ("/static/", "/vendor/")


class NoStore:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(CACHEABLE_PREFIXES):
            await self.app(scope, receive, send)
            return

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_header)
