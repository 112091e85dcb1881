"""RFC 9457 problem+json answers; the only place Corral's errors become HTTP status codes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from corral import errors
from corral.api.route_table import allowed_methods
from corral.http.validation import validation_items
from corral.services._db import RETRY_AFTER_S, unavailable_reason

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
    (errors.DatabaseUnavailable, 503, "Database unavailable"),
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


def _validation_detail(errors: Sequence[Any]) -> tuple[str, list[dict[str, str]]]:
    items = validation_items(errors)
    detail = "; ".join(f"{i['loc']}: {i['msg']}" for i in items) or "invalid request"
    return detail, items


#: Renders an error for a web page instead of problem+json: (request, status, title, detail).
PageError = Callable[[Request, int, str, str], Response]

#: Paths answered with problem+json; everything else is the web UI.
_API_PREFIXES = ("/api/", "/openapi.json", "/healthz", "/metrics")


def install_handlers(app: FastAPI, page_error: PageError | None = None) -> None:
    """Corral's errors become problem+json under the API, pages (``page_error``) elsewhere."""

    def answer(request: Request, status: int, title: str, detail: str, **extra: Any) -> Response:
        if page_error is not None and not request.url.path.startswith(_API_PREFIXES):
            page = page_error(request, status, title, detail)
            if status == 503:
                page.headers["Retry-After"] = str(RETRY_AFTER_S)
            return page
        # A 503 (the database or a host away) passes: the client may try again shortly.
        headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
        return problem(status, title, detail, headers=headers, **extra)

    @app.exception_handler(errors.CorralError)
    async def _corral(request: Request, exc: errors.CorralError) -> Response:
        status, title = status_for(exc)
        request.state.problem_detail = exc.message
        return answer(request, status, title, exc.message)

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: SQLAlchemyError) -> Response:
        # Work that used a session directly rather than through ``Db``: the same 503 when the
        # database is away; anything else is a bug (500, logged), never the driver's words.
        reason = unavailable_reason(exc)
        if reason is None:
            log.exception("unhandled database error", exc_info=exc)
            return answer(request, 500, "Internal error", "internal error; see the server log")
        log.warning("%s (%s %s)", reason, request.method, request.url.path)
        request.state.problem_detail = reason
        return answer(request, 503, "Database unavailable", reason)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        detail, items = _validation_detail(exc.errors())
        request.state.problem_detail = detail
        return answer(request, 422, "Invalid request", detail, errors=items)

    @app.exception_handler(ValidationError)
    async def _model_validation(request: Request, exc: ValidationError) -> Response:
        # A model built inside a handler (a form turned into a request): still the caller's
        # input, so 422 with the same messages, never a 500.
        detail, items = _validation_detail(exc.errors())
        request.state.problem_detail = detail
        return answer(request, 422, "Invalid request", detail, errors=items)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
            # FastAPI's answer to a body json.loads cannot even read (not UTF-8, nested too
            # deep): the same 422 as any other body that is not valid JSON.
            detail = "the request body is not valid JSON: it must be UTF-8 text, nested sanely"
            request.state.problem_detail = detail
            return problem(422, "Invalid request", detail, errors=[{"loc": "body", "msg": detail}])
        if page_error is not None and not request.url.path.startswith(_API_PREFIXES):
            return page_error(request, exc.status_code, str(exc.detail), str(exc.detail))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # RFC 9110: Allow lists every method of the resource, not just one route's.
            headers["Allow"] = ", ".join(sorted(allowed_methods(app, request.scope)))
        return problem(exc.status_code, str(exc.detail), str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return answer(request, 500, "Internal error", "internal error; see the server log")
