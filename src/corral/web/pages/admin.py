"""Tasks, the audit log (admins), users (admins) and API tokens."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from corral.errors import InvalidRequest
from corral.model.auth import Role, TokenCreate, UserCreate
from corral.services.principal import Principal
from corral.services.runtime import Services
from corral.web.page_auth import PageAdmin, PageViewer
from corral.web.pages.dashboard import Cursor
from corral.web.templating import render

router = APIRouter(include_in_schema=False)

#: Tasks, and audit entries, per page (older ones are a "Next page" away, as on the dashboard).
PAGE_SIZE = 100


async def _task_page(svc: Services, cursor: str | None) -> dict[str, Any]:
    page = await svc.tasks.page(None, None, PAGE_SIZE, cursor)
    return {"tasks": page.items, "next_cursor": page.next_cursor, "cursor": cursor}


@router.get("/tasks", name="ui.tasks")
async def tasks_page(request: Request, _: PageViewer, cursor: Cursor = None) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "tasks.html", {"active": "tasks", **await _task_page(svc, cursor)})


@router.get("/ui/fragments/tasks", name="ui.fragment.tasks")
async def tasks_fragment(request: Request, _: PageViewer, cursor: Cursor = None) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "fragments/task_page.html", await _task_page(svc, cursor))


@router.get("/audit", name="ui.audit")
async def audit_page(
    request: Request, _: PageAdmin, user: str = "", action: str = "", cursor: Cursor = None
) -> HTMLResponse:
    svc: Services = request.app.state.services
    page = await svc.audit.page(PAGE_SIZE, user or None, action or None, cursor)
    # A cursor belongs to its filters (the service refuses one from another query): the links
    # carry them along.
    filters = {k: v for k, v in (("user", user), ("action", action)) if v}
    context = {
        "active": "audit",
        "entries": page.items,
        "filter_user": user,
        "filter_action": action,
        "first_url": "/audit?" + urlencode(filters) if cursor else None,
        "next_url": (
            "/audit?" + urlencode({**filters, "cursor": page.next_cursor})
            if page.next_cursor
            else None
        ),
    }
    return render(request, "audit.html", context)


async def _users(svc: Services, **extra: Any) -> dict[str, Any]:
    return {"active": "users", "users": await svc.auth.list_users(), **extra}


@router.get("/users", name="ui.users")
async def users_page(request: Request, _: PageAdmin) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "users.html", await _users(svc))


@router.post("/ui/users", name="ui.user.create")
async def create_user(
    request: Request,
    _: PageAdmin,
    name: Annotated[str, Form(max_length=63)],
    password: Annotated[str, Form(max_length=1024)],
    role: Annotated[Role, Form()] = Role.VIEWER,
) -> HTMLResponse:
    svc: Services = request.app.state.services
    request.state.audit_target = name
    user = UserCreate(name=name, password=password, role=role)
    await svc.auth.create_user(user)
    return render(request, "fragments/users.html", await _users(svc, notice=f"added {name}"))


@router.post("/ui/users/{name}/delete", name="ui.user.delete")
async def delete_user(request: Request, name: str, who: PageAdmin) -> HTMLResponse:
    svc: Services = request.app.state.services
    await svc.auth.delete_user(who, name)
    return render(request, "fragments/users.html", await _users(svc, notice=f"deleted {name}"))


async def _tokens(svc: Services, who: Principal, **extra: Any) -> dict[str, Any]:
    return {"active": "tokens", "tokens": await svc.auth.list_tokens(who), **extra}


@router.get("/tokens", name="ui.tokens")
async def tokens_page(request: Request, who: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "tokens.html", await _tokens(svc, who))


@router.post("/ui/tokens", name="ui.token.create")
async def create_token(
    request: Request,
    who: PageViewer,
    name: Annotated[str, Form(max_length=63)],
    expires_in_days: Annotated[str, Form(max_length=8)] = "",
) -> HTMLResponse:
    svc: Services = request.app.state.services
    days = expires_in_days.strip()
    # ASCII digits only: str.isdigit() also says yes to "²" or "٣", which int() refuses.
    if days and not (days.isascii() and days.isdigit()):
        raise InvalidRequest("expires in days: give a whole number of days, or leave it empty")
    body = TokenCreate(name=name, expires_in_days=int(days) if days else None)
    new = await svc.auth.create_token(who.user, body.name, body.expires_in_days)
    extra = {"new_secret": new.secret, "new_name": new.name}
    return render(request, "fragments/tokens.html", await _tokens(svc, who, **extra))


@router.post("/ui/tokens/{token_id}/revoke", name="ui.token.revoke")
async def revoke_token(request: Request, token_id: str, who: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    await svc.auth.revoke_token(who, token_id)
    return render(request, "fragments/tokens.html", await _tokens(svc, who))
