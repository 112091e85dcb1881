"""Jinja2 templates for the web UI (autoescaped) and the filters they use."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import HTMLResponse

from corral.model.auth import Role
from corral.services.principal import Principal

TEMPLATES_DIR = Path(__file__).parent / "templates"

templates = Jinja2Templates(directory=TEMPLATES_DIR)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _size(value: int | float | None) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _mib(value: int | None) -> str:
    return _size(value * 1024 * 1024) if value is not None else "—"


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


templates.env.filters["duration"] = _duration
templates.env.filters["size"] = _size
templates.env.filters["mib"] = _mib
templates.env.filters["when"] = _when
templates.env.globals["Role"] = Role


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    """A page or fragment, with the caller and the CSRF token every page needs."""
    principal: Principal | None = getattr(request.state, "principal", None)
    session = getattr(request.state, "web_session", None)
    full = {
        "request": request,
        "me": principal,
        "csrf_token": session.csrf_token if session is not None else "",
        "is_admin": principal is not None and principal.allows(Role.ADMIN),
        "is_operator": principal is not None and principal.allows(Role.OPERATOR),
        **(context or {}),
    }
    return templates.TemplateResponse(request, name, full, status_code=status)
