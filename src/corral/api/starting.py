"""While the manager starts, its port already answers: "starting", not "connection refused".

Starting means connecting to every host, and the first connection to a fresh libvirtd waits for
its QEMU probe (about 35 s with every emulator installed). ``corral serve`` therefore starts the
services in the background (see ``create_app``) and this gate answers in the meantime:
``/healthz`` with 503 ``{"status": "starting"}``, the API with a 503 problem and ``Retry-After``,
pages with a short HTML page that reloads itself, WebSockets with close code 1013 (try again
later). If starting fails, the same answers say so until the server has shut down.
"""

from __future__ import annotations

import html
from enum import StrEnum

from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from corral.api.problems import problem

RETRY_AFTER_S = 5

#: Answered as JSON; the rest is the web UI (as in ``corral.api.problems``).
_API_PREFIXES = ("/api/", "/openapi.json", "/metrics")


class Phase(StrEnum):
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"


class Startup:
    """Where the manager is in its start; the app's lifespan moves it on."""

    def __init__(self) -> None:
        self.phase = Phase.STARTING
        self.error = ""

    def ready(self) -> None:
        self.phase = Phase.READY

    def failed(self, error: str) -> None:
        self.phase = Phase.FAILED
        self.error = error

    @property
    def sentence(self) -> str:
        if self.phase is Phase.FAILED:
            # Why stays in the server log: anonymous callers read this.
            return "Corral could not start and is shutting down; see the server log"
        return (
            "Corral is starting: it is connecting to its hosts (a freshly started libvirtd "
            f"first probes its emulators, which can take a minute); try again in {RETRY_AFTER_S} s"
        )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Corral: {title}</title>
<meta http-equiv="refresh" content="{retry}"></head>
<body><h1>Corral is {title}</h1><p>{sentence}</p>
<p>This page reloads itself every {retry} seconds.</p></body></html>
"""


def _answer(startup: Startup, path: str) -> Response:
    headers = {"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"}
    if path == "/healthz":
        return JSONResponse(
            {"status": startup.phase.value, "detail": startup.sentence},
            status_code=503,
            headers=headers,
        )
    if path.startswith(_API_PREFIXES):
        title = "Starting" if startup.phase is Phase.STARTING else "Start failed"
        return problem(503, title, startup.sentence, headers=headers)
    title = "starting" if startup.phase is Phase.STARTING else "not running"
    page = _PAGE.format(title=title, retry=RETRY_AFTER_S, sentence=html.escape(startup.sentence))
    return HTMLResponse(page, status_code=503, headers=headers)


class StartingGate:
    def __init__(self, app: ASGIApp, startup: Startup) -> None:
        self.app = app
        self.startup = startup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.startup.phase is Phase.READY or scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013, "reason": "starting"})
            return
        await _answer(self.startup, scope["path"])(scope, receive, send)
