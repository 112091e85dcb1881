"""Tasks, the audit log (admins), users (admins) and API tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from corral.errors import InvalidRequest
from corral.model.auth import Role, TokenCreate, UserCreate
from corral.services.principal import Principal
from corral.services.runtime import Services
from corral.web.page_auth import PageAdmin, PageViewer
from corral.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/tasks", name="ui.tasks")
async def tasks_page(request: Request, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    tasks = await svc.tasks.list_tasks(limit=100)
    return render(request, "tasks.html", {"active": "tasks", "tasks": tasks})


@router.get("/ui/fragments/tasks", name="ui.fragment.tasks")
async def tasks_fragment(request: Request, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    tasks = await svc.tasks.list_tasks(limit=100)
    return render(request, "fragments/task_list.html", {"tasks": tasks})


@router.get("/audit", name="ui.audit")
async def audit_page(
    request: Request, _: PageAdmin, user: str = "", action: str = ""
) -> HTMLResponse:
    svc: Services = request.app.state.services
    entries = await svc.audit.list_entries(200, user or None, action or None)
    context = {"active": "audit", "entries": entries, "filter_user": user, "filter_action": action}
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
