"""Logging in and out of the web UI."""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from corral.errors import AuthenticationRequired, PermissionDenied, RateLimited
from corral.http.browser import (
    CSRF_FIELD,
    SESSION_COOKIE,
    check_origin,
    is_https,
)
from corral.model.common import NAME_PATTERN
from corral.model.rules import NAME_RULE
from corral.services.runtime import Services
from corral.web.page_auth import session_principal
from corral.web.templating import render

router = APIRouter(include_in_schema=False)
_NAME = re.compile(NAME_PATTERN)

#: Before there is a session, the login form is protected by a double-submit cookie.
LOGIN_CSRF_COOKIE = "corral_login_csrf"


def _safe_next(target: str) -> str:
    """Only paths on this server: never an open redirect to another site."""
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _login_page(
    request: Request,
    *,
    next_path: str = "/",
    error: str = "",
    username: str = "",
    status: int = 200,
) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    page = render(
        request,
        "login.html",
        {"login_csrf": token, "next": next_path, "error": error, "username": username},
        status=status,
    )
    page.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=is_https(request)
    )
    return page


@router.get("/login", name="ui.login_page")
async def login_page(request: Request, next: str = "/") -> Response:
    return _login_page(request, next_path=_safe_next(next))


@router.post("/login", name="ui.auth.login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=63)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    svc: Services = request.app.state.services
    target = _safe_next(next)
    if not _NAME.fullmatch(username):
        # Checked like every name (as the API's login does): a newline or a NUL would reach
        # the log and the audit log, and no user can have such a name anyway.
        request.state.audit_user = "(invalid user name)"
        message = f"user name: {NAME_RULE}"
        request.state.problem_detail = message
        return _login_page(request, next_path=target, error=message, status=422)
    request.state.audit_user = username
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    try:
        check_origin(request)
        if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
            raise PermissionDenied("the login form expired: reload the page and log in again")
        client = request.client.host if request.client else "unknown"
        session, secret = await svc.auth.login_session(username, password, client)
    except (AuthenticationRequired, PermissionDenied, RateLimited) as exc:
        request.state.problem_detail = exc.message
        status = 429 if isinstance(exc, RateLimited) else 403
        status = 401 if isinstance(exc, AuthenticationRequired) else status
        return _login_page(
            request, next_path=target, error=exc.message, username=username, status=status
        )
    response = RedirectResponse(target, status_code=303)
    policy = svc.auth.session_policy
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(policy.absolute.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    request.state.audit_target = session.user
    return response


@router.post("/logout", name="ui.auth.logout")
async def logout(request: Request) -> Response:
    """Ends the session on the server (its consoles close too), not only the cookie."""
    svc: Services = request.app.state.services
    principal = await session_principal(request)
    if principal.session_id is not None:
        await svc.auth.logout_session(principal.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
