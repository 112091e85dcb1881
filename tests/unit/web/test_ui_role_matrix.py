"""Every web UI route, generated from the app's route table: no session → the login page;
a role below the route's → 403, checked with a real session and CSRF token per role."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.api.route_table import iter_routes
from corral.model.auth import Role
from tests.unit.web.conftest import Api, log_in

PUBLIC = {"ui.login_page", "ui.auth.login"}
_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def _required_role(route: APIRoute) -> Role | None:
    for dep in route.dependant.dependencies:
        role = getattr(dep.call, "required_role", None)
        if role is not None:
            return Role(role)
    return None


def _ui_routes() -> list[tuple[str, str, str, Role | None]]:
    return [
        (r.name, r.method, r.path, _required_role(r.route))
        for r in iter_routes(create_app())
        if r.name.startswith("ui.") and isinstance(r.route, APIRoute)
    ]


_ROUTES = _ui_routes()
_IDS = [f"{r[0]}-{r[1]}" for r in _ROUTES]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_the_matrix_covers_the_ui() -> None:
    names = {r[0] for r in _ROUTES}
    assert {"ui.dashboard", "ui.vm", "ui.vm.create", "ui.vm.start", "ui.user.create"} <= names
    unguarded = [r[0] for r in _ROUTES if r[3] is None and r[0] not in PUBLIC | {"ui.auth.logout"}]
    assert unguarded == [], "UI routes without a role check"


@pytest.mark.parametrize(("name", "method", "path", "role"), _ROUTES, ids=_IDS)
def test_ui_route_needs_a_session(
    api: Api, name: str, method: str, path: str, role: Role | None
) -> None:
    anonymous = TestClient(api.client.app)
    answer = anonymous.request(method, _concrete(path), follow_redirects=False)
    if name in PUBLIC:
        assert answer.status_code not in (303, 401, 403), answer.text
        return
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith("/login")


@pytest.fixture(scope="module")
def sessions(api: Api) -> dict[Role, tuple[TestClient, str]]:
    made = {}
    for role in Role:
        client = TestClient(api.client.app)
        made[role] = (client, log_in(client, role.value))
    return made


@pytest.mark.parametrize(("name", "method", "path", "role"), _ROUTES, ids=_IDS)
def test_ui_route_checks_the_role(
    sessions: dict[Role, tuple[TestClient, str]],
    name: str,
    method: str,
    path: str,
    role: Role | None,
) -> None:
    if role is None:
        return  # public or session-only (login, logout): covered above
    for caller in Role:
        client, csrf = sessions[caller]
        kwargs: dict[str, Any] = {"headers": {"X-CSRF-Token": csrf}, "follow_redirects": False}
        answer = client.request(method, _concrete(path), **kwargs)
        if _RANK[caller] < _RANK[role]:
            assert answer.status_code == 403, (caller, answer.text)
        else:
            assert answer.status_code != 403, (caller, answer.text)
