"""Who is looking at a page: the browser session, and the CSRF check on every change."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response

from corral.errors import AuthenticationRequired
from corral.http.browser import (
    CSRF_FIELD,
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    check_csrf,
    check_origin,
    is_background,
)
from corral.model.auth import Role
from corral.services.principal import Principal
from corral.services.runtime import Services


class LoginRequired(Exception):
    """No live session: the browser goes to the login page (and back afterwards)."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


async def session_principal(request: Request) -> Principal:
    svc: Services = request.app.state.services
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        raise LoginRequired(request.url.path)
    try:
        principal, session = await svc.auth.authenticate_session(
            secret, touch=not is_background(request)
        )
    except AuthenticationRequired:
        raise LoginRequired(request.url.path) from None
    request.state.principal = principal
    request.state.web_session = session
    if request.method not in SAFE_METHODS:
        check_origin(request)
        sent = request.headers.get(CSRF_HEADER)
        if sent is None:
            form = await request.form()
            field = form.get(CSRF_FIELD)
            sent = field if isinstance(field, str) else None
        check_csrf(sent, session.csrf_token)
    return principal


def page_role(role: Role) -> object:
    async def dependency(principal: Annotated[Principal, Depends(session_principal)]) -> Principal:
        principal.require(role)
        return principal

    dependency.required_role = role  # type: ignore[attr-defined]  # read by the role matrix
    return Depends(dependency)


PageViewer = Annotated[Principal, page_role(Role.VIEWER)]
PageOperator = Annotated[Principal, page_role(Role.OPERATOR)]
PageAdmin = Annotated[Principal, page_role(Role.ADMIN)]


def to_login(request: Request, exc: LoginRequired) -> Response:
    if is_htmx(request):
        # A fragment's path is no page to come back to: log in, then start from the top.
        return Response(status_code=401, headers={"HX-Redirect": "/login"})
    target = f"/login?next={exc.next_path}" if exc.next_path not in ("/", "/login") else "/login"
    return RedirectResponse(target, status_code=303)
