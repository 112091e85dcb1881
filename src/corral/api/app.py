"""The FastAPI application: REST API under /api/v1, health, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

import corral
from corral.api.body_limit import BodyLimit
from corral.api.host_check import HostCheck
from corral.api.middleware import AuditMiddleware
from corral.api.openapi import CorralAPI, document_errors
from corral.api.problems import install_handlers
from corral.api.routers import (
    auth,
    backups,
    console,
    console_ws,
    events,
    ha,
    hosts,
    images,
    metrics,
    migrations,
    networks,
    power,
    storage_domains,
    tasks,
    templates,
    vm_changes,
    vms,
    volumes,
)
from corral.api.starting import StartingGate, Startup
from corral.api.unread_body import CloseUnreadBody
from corral.config import Settings, load_settings
from corral.errors import CorralError
from corral.services._db import RETRY_AFTER_S
from corral.services.runtime import Services
from corral.web import api_docs
from corral.web.assets import default_node_modules, mount_assets
from corral.web.cache_control import NoStore
from corral.web.errors import install_page_handlers, page_error
from corral.web.pages import admin as admin_pages
from corral.web.pages import backups as backup_pages
from corral.web.pages import consoles, dashboard, session, vm_create
from corral.web.pages import host_nics as host_nic_pages
from corral.web.pages import images as image_pages
from corral.web.pages import networks as network_pages
from corral.web.pages import power as power_pages
from corral.web.pages import storage as storage_pages
from corral.web.pages import templates as template_pages
from corral.web.pages import vms as vm_pages
from corral.web.security_headers import SecurityHeaders

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    *,
    start_in_background: bool = False,
    on_start_failure: Callable[[], None] | None = None,
) -> FastAPI:
    """Build the app. ``services`` lets tests share one container; otherwise it is created
    from ``settings`` and started/stopped with the app's lifespan. ``start_in_background``
    (``corral serve``): the port answers at once, "starting" until the services have started
    (``corral.api.starting``); a failed start calls ``on_start_failure`` (``corral serve``
    stops the server)."""
    configured = settings or (services.settings if services else None) or load_settings()
    startup = Startup()

    async def start(svc: Services) -> None:
        try:
            await svc.start()
        except Exception as exc:
            if not start_in_background:
                raise
            log.exception("Corral could not start")
            # The message of Corral's own errors only: others may quote a URL with a password.
            startup.failed(exc.message if isinstance(exc, CorralError) else type(exc).__name__)
            if on_start_failure is not None:
                on_start_failure()
            return
        startup.ready()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = services or Services(configured)
        app.state.services = svc
        loop = type(asyncio.get_running_loop())
        log.info("Corral %s starting (event loop: %s)", corral.__version__, loop.__module__)
        if not start_in_background:
            await start(svc)
            try:
                yield
            finally:
                await svc.stop()
            return
        starting = asyncio.create_task(start(svc), name="corral-start")
        try:
            yield
        finally:
            if not starting.done():
                log.info("stopping before the start has finished")
                starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            await svc.stop()

    app = CorralAPI(
        title="Corral",
        version=corral.__version__,
        description="KVM/QEMU virtualization manager. Authenticate with `Authorization: Bearer`. "
        "Errors are RFC 9457 `application/problem+json` (schema `Problem`). The serial console "
        "is a WebSocket at `/api/v1/vms/{name}/serial`, not an HTTP operation, so it is not "
        "listed here.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        # FastAPI's own /docs and /redoc load their scripts from public CDNs: ours come from
        # the pinned npm packages (corral.web.api_docs).
        docs_url=None,
        redoc_url=None,
    )
    app.state.startup = startup
    app.state.node_modules = configured.node_modules_dir or default_node_modules()
    install_handlers(app, page_error)
    install_page_handlers(app)
    _install_middleware(app, configured, startup)
    _include_routes(app)

    @app.get("/healthz", tags=["meta"], name="healthz", response_model=None)
    async def healthz(request: Request) -> dict[str, str] | JSONResponse:
        # Answered by the starting gate until the start is done. Ready but without its
        # database, an instance can do nothing: 503, so a load balancer routes elsewhere.
        services: Services = request.app.state.services
        reason = await services.db.health()
        if reason is not None:
            body = {"status": "unhealthy", "state": "ready", "detail": reason}
            headers = {"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"}
            return JSONResponse(body, status_code=503, headers=headers)
        return {"status": "ok", "state": "ready"}

    return app


def _install_middleware(app: FastAPI, configured: Settings, startup: Startup) -> None:
    # Outermost last: the client's address is settled first, then a foreign Host is refused,
    # then "starting", then the body ceiling, then what the app does is audited.
    app.add_middleware(AuditMiddleware)
    app.add_middleware(BodyLimit, limit=configured.max_body_bytes)
    app.add_middleware(StartingGate, startup=startup)
    app.add_middleware(HostCheck, settings=configured)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(NoStore)
    app.add_middleware(CloseUnreadBody)
    if configured.trusted_proxies:
        # uvicorn's own reading of these headers is off (``corral serve``): from any other
        # peer, X-Forwarded-For would choose the address the login throttle counts.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=configured.trusted_proxies)


def _include_routes(app: FastAPI) -> None:
    api = APIRouter(prefix=API_PREFIX)
    for module in (
        auth,
        hosts,
        vms,
        vm_changes,
        migrations,
        power,
        networks,
        images,
        volumes,
        storage_domains,
        console,
        console_ws,
        tasks,
        events,
        ha,
        templates,
        backups,
    ):
        api.include_router(document_errors(module.router))
    app.include_router(api)
    app.include_router(document_errors(metrics.router))
    app.include_router(api_docs.router)
    # vm_create before vm_pages: /vms/new must not be taken for a VM named "new".
    pages = (
        session,
        dashboard,
        vm_create,
        consoles,
        vm_pages,
        image_pages,
        admin_pages,
        power_pages,
        storage_pages,
        network_pages,
        host_nic_pages,
        template_pages,
        backup_pages,
    )
    for page in pages:
        app.include_router(page.router)
    mount_assets(app, app.state.node_modules)
