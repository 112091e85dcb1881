"""The OpenAPI document tells the truth about errors: every operation lists the problem+json
answers it can give, each with the one shared ``Problem`` schema.

Most of a route's error answers follow from what it depends on, so they are derived rather than
written by hand: an authenticating dependency can answer 401, one that needs more than a viewer
403, a path parameter names an object that may not exist (404), and parameters or a body can be
malformed (422). What only the route knows (409, 429, 502, 503, 504) it declares itself with
``problem_responses``; ``document_errors`` fills in every error answer's content.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from corral.api.problems import PROBLEM_JSON
from corral.model.auth import Role
from corral.model.problem import Problem

_REF_PREFIX = "#/components/schemas/"

_DESCRIPTIONS: dict[int, str] = {
    401: "no API token, or one that is unknown, revoked or expired",
    403: "the caller's role does not allow this",
    404: "the object the path names does not exist",
    409: "the request conflicts with the current state (name taken, wrong state, work in "
    "progress, not enough resources on the host)",
    422: "the request is malformed; `errors` lists every invalid field",
    429: "too many attempts; the detail says how long to wait",
    502: "libvirt or the host reported a failure",
    503: "the host is unreachable",
    504: "the operation did not finish in time",
}

# A 401 always comes with the challenge (RFC 9110 §11.6.1); problems.problem() sends it.
_CHALLENGE = {
    "WWW-Authenticate": {
        "description": "always `Bearer`",
        "schema": {"type": "string"},
        "required": True,
    }
}


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    """One error answer as FastAPI's ``responses`` entries spell it."""
    response: dict[str, Any] = {
        "description": description or _DESCRIPTIONS.get(status, "an error"),
        "content": {PROBLEM_JSON: {"schema": {"$ref": _REF_PREFIX + Problem.__name__}}},
    }
    if status == 401:
        response["headers"] = _CHALLENGE
    return response


def problem_responses(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """Error answers a route declares beyond the derived ones: a status, or a status with a
    description of its own (``(504, "the image did not appear in time")``)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for entry in statuses:
        status, description = entry if isinstance(entry, tuple) else (entry, None)
        responses[status] = problem_response(status, description)
    return responses


def on_host(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """``problem_responses`` for a route that calls libvirt on a host, which can fail (502) or
    be unreachable (503)."""
    return problem_responses(502, 503, *statuses)


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def derived_statuses(route: APIRoute) -> set[int]:
    """The error answers a route's dependencies and parameters make possible."""
    statuses: set[int] = set()
    roles = [
        role
        for dep in _dependencies(route.dependant)
        if (role := getattr(dep.call, "required_role", None)) is not None
    ]
    if roles:
        statuses.add(401)
    if any(role != Role.VIEWER for role in roles):
        statuses.add(403)
    if route.dependant.path_params:
        statuses.add(404)
    if route.body_field is not None or route.dependant.query_params or route.dependant.path_params:
        statuses.add(422)
    return statuses


def document_errors(router: APIRouter) -> APIRouter:
    """Give every route of ``router`` its derived error answers, and every declared error answer
    the problem+json content. Call before ``include_router``: included routes copy ``responses``."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue  # WebSocket routes are not HTTP operations: the document leaves them out
        for status in derived_statuses(route):
            route.responses.setdefault(status, problem_response(status))
        for key, response in list(route.responses.items()):
            status = int(key)
            if status >= 400 and "content" not in response:
                route.responses[key] = problem_response(status, response.get("description"))
        # In status order, so the document reads the same whichever way a route declared them.
        route.responses = dict(sorted(route.responses.items(), key=lambda kv: str(kv[0])))
    return router


def _problem_components() -> dict[str, Any]:
    schema = Problem.model_json_schema(ref_template=_REF_PREFIX + "{model}")
    components: dict[str, Any] = schema.pop("$defs", {})
    components[Problem.__name__] = schema
    return components


class CorralAPI(FastAPI):
    """FastAPI whose document carries the shared ``Problem`` schema and not FastAPI's own
    validation-error schemas, which describe answers Corral never sends."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            document = super().openapi()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            schemas.update(_problem_components())
        return self.openapi_schema or {}
