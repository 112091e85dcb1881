"""Request-level audit and latency metrics, as one pure ASGI middleware (no body buffering)."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.errors import CorralError
from corral.metrics import API_LATENCY

log = logging.getLogger(__name__)

_MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
#: The API and the web UI's actions; UI routes are named ``ui.<action>`` and audited as
#: ``<action>``, so a VM started from a page and one started by the CLI read the same.
_AUDITED = ("/api/", "/ui/", "/login", "/logout")


def _outcome(status: int, state: dict[str, Any]) -> str:
    if status < 400:
        return "ok"
    if status in (401, 403):
        return "denied"
    return "error: " + str(state.get("problem_detail") or f"HTTP {status}")


class AuditMiddleware:
    """Every mutating call (API and web UI) leaves an audit entry: who, what, target, outcome."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            API_LATENCY.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
            if scope["method"] in _MUTATING and scope["path"].startswith(_AUDITED):
                await self._audit(scope, route, status)

    @staticmethod
    async def _audit(scope: Scope, route: Any, status: int) -> None:
        state: dict[str, Any] = scope.get("state", {})
        principal = state.get("principal")
        user = principal.user if principal else str(state.get("audit_user", "anonymous"))
        name = getattr(route, "name", None)
        action = name.removeprefix("ui.") if name else f"{scope['method']} {scope['path']}"
        target = str(state.get("audit_target", "")) or "/".join(
            str(v) for v in scope.get("path_params", {}).values()
        )
        services = scope["app"].state.services
        try:
            detail = str(state.get("audit_detail", "")) if status < 400 else ""
            await services.audit.record(user, action, target, _outcome(status, state), detail)
        except CorralError as exc:
            log.error("could not write the audit entry for %s: %s", action, exc.message)
