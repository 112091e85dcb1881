"""Login, users and API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from corral.api.deps import Admin, Svc, Viewer
from corral.api.openapi import problem_responses
from corral.api.params import CursorQuery, IdPath, LimitQuery, NamePath
from corral.model.auth import LoginRequest, NewToken, TokenCreate, TokenInfo, UserCreate, UserInfo
from corral.model.cursor import query_digest
from corral.model.page import DEFAULT_LIMIT, Page, paged

router = APIRouter(tags=["auth"])


@router.post(
    "/auth/login",
    name="auth.login",
    status_code=201,
    responses=problem_responses(
        (401, "wrong user name or password, or the user is disabled"),
        (
            429,
            "too many failed logins for this user name within a minute; the detail says "
            "how long to wait",
        ),
    ),
)
async def login(body: LoginRequest, request: Request, svc: Svc) -> NewToken:
    """Trade a user name and password for a new API token (shown once). It expires after
    `expires_in_days`, by default the server's `api_login_token_days` (30); the answer's
    `expires_at` says when. Tokens for longer: `POST /tokens`."""
    request.state.audit_user = body.username
    client = request.client.host if request.client else "unknown"
    return await svc.auth.login(
        body.username, body.password, body.token_name, client, body.expires_in_days
    )


@router.get("/auth/whoami", name="auth.whoami")
async def whoami(svc: Svc, who: Viewer) -> UserInfo:
    return await svc.auth.whoami(who)


@router.get("/tokens", name="token.list")
async def list_tokens(
    svc: Svc, who: Viewer, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[TokenInfo]:
    """Your tokens (admins: everyone's), oldest first, a page at a time."""
    tokens = await svc.auth.list_tokens(who)
    # The caller is part of the query: admins and others see different lists.
    digest = query_digest("tokens", user=who.user)
    return paged(
        tokens,
        lambda t: (t.created_at.isoformat(), t.id),
        digest=digest,
        limit=limit,
        cursor=cursor,
        arity=2,
    )


@router.post("/tokens", name="token.create", status_code=201)
async def create_token(body: TokenCreate, svc: Svc, who: Viewer) -> NewToken:
    return await svc.auth.create_token(who.user, body.name, body.expires_in_days)


@router.delete("/tokens/{token_id}", name="token.revoke", status_code=204)
async def revoke_token(token_id: IdPath, svc: Svc, who: Viewer) -> Response:
    await svc.auth.revoke_token(who, token_id)
    return Response(status_code=204)


@router.get("/users", name="user.list")
async def list_users(
    svc: Svc, _: Admin, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> Page[UserInfo]:
    """Users by name, a page at a time."""
    users = await svc.auth.list_users()
    digest = query_digest("users")
    return paged(users, lambda u: (u.name,), digest=digest, limit=limit, cursor=cursor)


@router.post("/users", name="user.create", status_code=201, responses=problem_responses(409))
async def create_user(body: UserCreate, svc: Svc, _: Admin) -> UserInfo:
    return await svc.auth.create_user(body)


@router.delete(
    "/users/{name}",
    name="user.delete",
    status_code=204,
    responses=problem_responses((409, "the user is you, or the last admin")),
)
async def delete_user(name: NamePath, svc: Svc, who: Admin) -> Response:
    await svc.auth.delete_user(who, name)
    return Response(status_code=204)
