"""Request dependencies: the services container and the authenticated principal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from corral.errors import AuthenticationRequired
from corral.model.auth import Role
from corral.services.principal import Principal
from corral.services.runtime import Services

_bearer = HTTPBearer(auto_error=False, description="an API token from `corral login`")


def services(request: HTTPConnection) -> Services:
    svc: Services = request.app.state.services
    return svc


async def authenticate(request: HTTPConnection, token: str | None) -> Principal:
    if not token:
        raise AuthenticationRequired(
            "this call needs an API token: send 'Authorization: Bearer TOKEN' "
            "(get one with `corral login`)"
        )
    principal = await services(request).auth.authenticate(token)
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
