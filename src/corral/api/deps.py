"""Request dependencies: the services container and the authenticated principal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from corral.errors import AuthenticationRequired
from corral.http.browser import (
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

_bearer = HTTPBearer(auto_error=False, description="an API token from `corral login`")


def services(request: HTTPConnection) -> Services:
    svc: Services = request.app.state.services
    return svc


async def authenticate(request: HTTPConnection, token: str | None) -> Principal:
    """An API token (``Authorization: Bearer``), else a browser session cookie; a
    state-changing call with a session must also pass the origin and CSRF checks."""
    if token:
        principal = await services(request).auth.authenticate(token)
    elif secret := request.cookies.get(SESSION_COOKIE):
        principal, session = await services(request).auth.authenticate_session(
            secret, touch=not is_background(request)
        )
        request.state.web_session = session
        if request.scope["type"] == "http" and request.scope["method"] not in SAFE_METHODS:
            check_origin(request)
            check_csrf(request.headers.get(CSRF_HEADER), session.csrf_token)
    else:
        raise AuthenticationRequired(
            "this call needs an API token: send 'Authorization: Bearer TOKEN' "
            "(get one with `corral login`), or log in to the web UI"
        )
    request.state.principal = principal
    return principal


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the caller and checks that their role allows ``role``."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        principal = await authenticate(request, credentials.credentials if credentials else None)
        principal.require(role)
        return principal

    dependency.required_role = role  # type: ignore[attr-defined]  # read by the role-matrix test
    return dependency


Svc = Annotated[Services, Depends(services)]
Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


async def metrics_reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """Who may scrape ``/metrics``: any authenticated user (a viewer's token is enough), or
    anyone where the setting ``metrics_public`` opens it."""
    if services(request).settings.metrics_public:
        return None
    principal = await authenticate(request, credentials.credentials if credentials else None)
    principal.require(Role.VIEWER)
    return principal


metrics_reader.required_role = Role.VIEWER  # type: ignore[attr-defined]  # the role matrix
MetricsReader = Annotated[Principal | None, Depends(metrics_reader)]
