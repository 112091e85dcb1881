"""``corral serve``: run the manager (API and web UI) with uvicorn."""

from __future__ import annotations

import logging
import re
from typing import Any

import typer
import uvicorn

from corral.api.app import create_app
from corral.api.starting import Phase
from corral.config import load_settings
from corral.errors import InvalidRequest
from corral.serving import plan_serving

log = logging.getLogger("corral.serve")

_TICKET = re.compile(r"(ticket=)[^\s&\"']+")


class RedactTickets(logging.Filter):
    """uvicorn logs each WebSocket handshake with its query string: a console ticket is a
    (short-lived, one-time) secret, and secrets never land in logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str) and "ticket=" in record.msg:
            record.msg = _TICKET.sub(r"\1***", record.msg)
        return True


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    redact = RedactTickets()
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(redact)


#: uvicorn's server stack for Corral (bench/console_proxy.py serves the console relay with it
#: too). uvicorn's access log would print query strings (console tickets): Corral's own
#: middleware records requests instead.
UVICORN_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "ws": "websockets-sansio",
    "access_log": False,
    # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: any local client could then
    # name the address the login throttle counts. Corral's app reads proxy headers itself, from
    # the peers in ``trusted_proxies`` only.
    "proxy_headers": False,
}


def serve(
    host: str | None = typer.Option(
        None, "--listen-host", help="Address to listen on (default 127.0.0.1; CORRAL_LISTEN_HOST)."
    ),
    port: int | None = typer.Option(
        None, "--listen-port", help="Port to listen on (default 8080; CORRAL_LISTEN_PORT)."
    ),
) -> None:
    """Serve Corral's API and web UI on the configured address (127.0.0.1:8080 unless
    configured). Beyond loopback Corral serves HTTPS only."""
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["listen_host"] = host
    if port is not None:
        overrides["listen_port"] = port
    settings = load_settings(**overrides)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _configure_logging(settings.log_level)
    try:
        serving = plan_serving(settings)
    except InvalidRequest as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    log.info("serving %s", serving.local_url(settings))
    if serving.ca_cert is not None:
        log.info("HTTPS certificate from Corral's web CA: clients trust %s", serving.ca_cert)
    # The port answers at once ("starting") while the hosts are connected in the background;
    # a start that fails stops the server (as SIGTERM would, without a signal: uvicorn would
    # re-raise that at the end, and the process would die of it instead of exiting 1).
    server: uvicorn.Server | None = None

    def stop() -> None:
        if server is not None:
            server.should_exit = True

    app = create_app(settings, start_in_background=True, on_start_failure=stop)
    config = uvicorn.Config(
        app,
        host=settings.listen_host,
        port=settings.listen_port,
        log_level=settings.log_level,
        ssl_certfile=str(serving.cert) if serving.cert else None,
        ssl_keyfile=str(serving.key) if serving.key else None,
        # uvicorn's own loggers go through the handler set up above (and its ticket filter).
        log_config=None,
        **UVICORN_OPTIONS,
    )
    server = uvicorn.Server(config)
    server.run()
    if app.state.startup.phase is Phase.FAILED or not server.started:
        raise typer.Exit(1)
