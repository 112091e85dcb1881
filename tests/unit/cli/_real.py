"""The real Corral app on libvirt's ``test:///default`` driver, on a real port, for CLI tests.

One server serves a whole test module (argon2, the database migrations and the first libvirt
probe are too slow to repeat per test): tests use names of their own. Every HTTP request is
recorded (method, path, body, query) so tests can check what the CLI sent.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.api.app import create_app
from corral.config import Settings
from corral.model.auth import Role
from corral.services.runtime import Services

ADMIN = "admin"
PASSWORD = "correct horse battery"

#: [method, path, body or None, query]: a list, as the body arrives after the request.
Request = list[Any]


class RecordRequests:
    """ASGI wrapper keeping each HTTP request ``app`` receives (bodies decoded, lossy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[Request] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Recorded on arrival (an answer may reach the client before the app returns), the
        # body once the app has read all of it.
        query = dict(parse_qsl(scope["query_string"].decode()))
        entry: Request = [scope["method"], scope["path"], None, query]
        self.requests.append(entry)
        chunks: list[bytes] = []

        async def keep() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    entry[2] = b"".join(chunks).decode(errors="replace") or None
            return message

        await self.app(scope, keep, send)


@contextmanager
def serve(app: ASGIApp, *, lifespan: str = "on", **uvicorn_options: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread on a free loopback port; its base URL.
    ``uvicorn_options`` (e.g. ``ssl_certfile``) go to uvicorn."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options = {"log_level": "warning", **uvicorn_options}
    config = uvicorn.Config(app, ws="websockets-sansio", lifespan=lifespan, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the app did not start under uvicorn")
        time.sleep(0.01)
    try:
        scheme = "https" if "ssl_certfile" in uvicorn_options else "http"
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@contextmanager
def real_corral(
    data_dir: Path, **uvicorn_options: Any
) -> Iterator[tuple[str, Services, RecordRequests]]:
    """(base URL, services, recorder) of a running Corral with user ``ADMIN``;
    ``uvicorn_options`` go to uvicorn (see :func:`serve`)."""
    settings = Settings(
        data_dir=data_dir,
        local_host_name="test",
        local_host_uri="test:///default",
        pool_dir=str(data_dir / "pool"),
        reconcile_interval_s=3600,
    )
    services = Services(settings)
    services.auth.create_user_sync(ADMIN, PASSWORD, Role.ADMIN)
    app = RecordRequests(create_app(settings, services))
    with serve(app, **uvicorn_options) as url:
        yield url, services, app
