"""The FastAPI application: REST API under /api/v1, health, metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

import corral
from corral.api.middleware import AuditMiddleware
from corral.api.openapi import CorralAPI, document_errors
from corral.api.problems import install_handlers
from corral.api.routers import (
    auth,
    console,
    console_ws,
    events,
    hosts,
    images,
    metrics,
    migrations,
    power,
    tasks,
    vm_changes,
    vms,
)
from corral.api.unread_body import CloseUnreadBody
from corral.config import Settings, load_settings
from corral.services.runtime import Services
from corral.web import api_docs
from corral.web.assets import default_node_modules, mount_assets
from corral.web.cache_control import NoStore
from corral.web.errors import install_page_handlers, page_error
from corral.web.pages import admin as admin_pages
from corral.web.pages import consoles, dashboard, session, vm_create
from corral.web.pages import images as image_pages
from corral.web.pages import power as power_pages
from corral.web.pages import vms as vm_pages
from corral.web.security_headers import SecurityHeaders

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the app. ``services`` lets tests share one container; otherwise it is created
    from ``settings`` and started/stopped with the app's lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = services or Services(settings or load_settings())
        app.state.services = svc
        loop = type(asyncio.get_running_loop())
        log.info("Corral %s starting (event loop: %s)", corral.__version__, loop.__module__)
        await svc.start()
        try:
            yield
        finally:
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
    configured = settings or (services.settings if services else None)
    node_modules = configured.node_modules_dir if configured else None
    app.state.node_modules = node_modules or default_node_modules()
    install_handlers(app, page_error)
    install_page_handlers(app)
    app.add_middleware(AuditMiddleware)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(NoStore)
    app.add_middleware(CloseUnreadBody)

    api = APIRouter(prefix=API_PREFIX)
    for module in (
        auth,
        hosts,
        vms,
        vm_changes,
        migrations,
        power,
        images,
        console,
        console_ws,
        tasks,
        events,
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
    )
    for page in pages:
        app.include_router(page.router)
    mount_assets(app, app.state.node_modules)

    @app.get("/healthz", tags=["meta"], name="healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
