"""``corral serve``: run the manager (API) with uvicorn."""

from __future__ import annotations

import logging
from typing import Any

import typer
import uvicorn

from corral.api.app import create_app
from corral.config import load_settings

#: uvicorn's server stack for Corral (bench/console_proxy.py serves the console relay with it
#: too). uvicorn's access log would print query strings; tokens never travel there, but keep
#: request logging in Corral's own middleware.
UVICORN_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "ws": "websockets-sansio",
    "access_log": False,
}


def serve(
    host: str | None = typer.Option(
        None, "--listen-host", help="Address to listen on (default 127.0.0.1; CORRAL_LISTEN_HOST)."
    ),
    port: int | None = typer.Option(
        None, "--listen-port", help="Port to listen on (default 8080; CORRAL_LISTEN_PORT)."
    ),
) -> None:
    """Serve Corral's API on the configured address (127.0.0.1:8080 unless configured)."""
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["listen_host"] = host
    if port is not None:
        overrides["listen_port"] = port
    settings = load_settings(**overrides)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.listen_host,
        port=settings.listen_port,
        log_level=settings.log_level,
        **UVICORN_OPTIONS,
    )
