"""The app's route table, flattened (FastAPI keeps included routers as lazy nodes)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Match
from starlette.types import Scope


@dataclass(frozen=True)
class RouteEntry:
    name: str
    method: str  # "WS" for WebSocket routes
    path: str
    route: APIRoute | APIWebSocketRoute | None = None


def _entries(route: Any, path: str) -> Iterator[RouteEntry]:
    if isinstance(route, APIRoute):
        for method in sorted(route.methods or ()):
            yield RouteEntry(route.name, method, path or route.path, route)
    elif isinstance(route, APIWebSocketRoute):
        yield RouteEntry(route.name, "WS", path or route.path, route)


def iter_routes(app: FastAPI) -> Iterator[RouteEntry]:
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            yield from _entries(route, "")
            continue
        for context in contexts():
            # starlette_route carries the full path (with prefixes) for WebSocket routes too.
            full = getattr(context.starlette_route, "path", "") or context.path
            yield from _entries(context.original_route, full)


def _contexts(app: FastAPI) -> Iterator[Any]:
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        yield from contexts() if contexts is not None else (route,)


#: Names of routes that only refuse (405) the methods a parameter route would otherwise take at
#: a fixed path (``DELETE /vms/summary`` is not a VM named "summary"); they allow nothing.
SHADOW_PREFIX = "shadow."


def allowed_methods(app: FastAPI, scope: Scope) -> set[str]:
    """Every method some route serves at the request's path. Starlette's 405 names only the
    first route that matched the path, but GET and POST on one path are two routes here."""
    methods: set[str] = set()
    shadowed: set[str] = set()
    for context in _contexts(app):
        match, _ = context.matches({**scope, "method": ""})
        if match is not Match.NONE and str(getattr(context, "name", "")).startswith(SHADOW_PREFIX):
            shadowed |= set(getattr(context, "methods", None) or ())
        elif match is not Match.NONE:
            methods |= set(getattr(context, "methods", None) or ())
    return methods - shadowed
