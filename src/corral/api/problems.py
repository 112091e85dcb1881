"""RFC 9457 problem+json answers; the only place Corral's errors become HTTP status codes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from corral import errors
from corral.api.route_table import allowed_methods
from corral.model.rules import pattern_rule

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_STATUS: list[tuple[type[errors.CorralError], int, str]] = [
    (errors.InvalidRequest, 422, "Invalid request"),
    (errors.NotFound, 404, "Not found"),
    (errors.InsufficientResources, 409, "Insufficient resources"),
    (errors.Conflict, 409, "Conflict"),
    (errors.AuthenticationRequired, 401, "Authentication required"),
    (errors.PermissionDenied, 403, "Permission denied"),
    (errors.OperationTimeout, 504, "Operation timed out"),
    (errors.Cancelled, 409, "Cancelled"),
    (errors.RateLimited, 429, "Too many requests"),
    (errors.HostUnreachable, 503, "Host unreachable"),
    (errors.HostError, 502, "Host error"),
]


def status_for(exc: errors.CorralError) -> tuple[int, str]:
    for cls, status, title in _STATUS:
        if isinstance(exc, cls):
            return status, title
    return 500, "Internal error"


def problem(
    status: int,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    body.update(extra)
    merged = dict(headers or {})
    if status == 401:
        merged["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=merged)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type")
    if kind == "json_invalid":
        return "the request body is not valid JSON: " + str(err.get("ctx", {}).get("error", ""))
    if (rule := pattern_rule(err)) is not None:
        return rule
    if kind == "model_attributes_type" and tuple(err.get("loc", ())) == ("body",):
        return "the request body must be a JSON object sent with Content-Type: application/json"
    if kind == "extra_forbidden":
        return "unknown field: remove it (see /openapi.json for the accepted fields)"
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def _validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, str]]]:
    items = []
    for err in exc.errors():
        msg = _message(err)
        items.append({"loc": _loc(tuple(err.get("loc", ()))), "msg": msg})
    detail = "; ".join(f"{i['loc']}: {i['msg']}" for i in items) or "invalid request"
    return detail, items


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.CorralError)
    async def _corral(request: Request, exc: errors.CorralError) -> JSONResponse:
        status, title = status_for(exc)
        request.state.problem_detail = exc.message
        return problem(status, title, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, items = _validation_detail(exc)
        request.state.problem_detail = detail
        return problem(422, "Invalid request", detail, errors=items)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
            # FastAPI's answer to a body json.loads cannot even read (not UTF-8, nested too
            # deep): the same 422 as any other body that is not valid JSON.
            detail = "the request body is not valid JSON: it must be UTF-8 text, nested sanely"
            request.state.problem_detail = detail
            return problem(422, "Invalid request", detail, errors=[{"loc": "body", "msg": detail}])
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # RFC 9110: Allow lists every method of the resource, not just one route's.
            headers["Allow"] = ", ".join(sorted(allowed_methods(app, request.scope)))
        return problem(exc.status_code, str(exc.detail), str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "Internal error", "internal error; see the server log")
