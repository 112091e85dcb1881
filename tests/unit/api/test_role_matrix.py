"""Every route, generated from the app's route table: 401 without credentials, 403 for a viewer
on mutating routes (except the self-service token routes)."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from corral.api.app import create_app
from corral.api.route_table import SHADOW_PREFIX, iter_routes
from corral.model.auth import Role
from tests.unit.api.conftest import Api

PUBLIC = {"auth.login", "healthz"}
SELF_SERVICE = {"token.create", "token.revoke"}  # a viewer manages their own tokens
# A viewer may ask for a console ticket: the console it opens is view-only (enforced by the proxy).
VIEWER_POSTS = {"vm.console.ticket"}
ADMIN_READS = {"user.list", "audit.list", "volume.list", "storage_domain.volume.list"}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}

# Streams never end on their own; TestClient waits for a response's end. Their role checks are
# in test_events_stream.py, against a real server.
STREAMING = {"event.stream"}

_TABLE = list(iter_routes(create_app()))
# The API's routes; the web UI's (browser sessions, not tokens) have their own matrix in
# tests/unit/web/test_ui_role_matrix.py.
_ROUTES = [
    (r.name, r.method, r.path)
    for r in _TABLE
    if r.method != "WS"
    and not r.name.startswith(("ui.", SHADOW_PREFIX))  # shadow routes serve nothing: 405
    and r.name != "api_docs"
]
_FINITE = [r for r in _ROUTES if r[0] not in STREAMING]
_WS_ROUTES = [r.path for r in _TABLE if r.method == "WS"]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_the_matrix_covers_the_api() -> None:
    names = {name for name, _, _ in _ROUTES}
    assert {"vm.create", "vm.delete", "task.cancel", "user.create", "host.add"} <= names
    assert len(_ROUTES) >= 30


@pytest.mark.parametrize(("name", "method", "path"), _ROUTES, ids=[r[0] for r in _ROUTES])
def test_route_requires_authentication(api: Api, name: str, method: str, path: str) -> None:
    answer = api.client.request(method, _concrete(path))
    if name in PUBLIC:
        assert answer.status_code != 401
        return
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "corral login" in answer.json()["detail"]
    bad = api.client.request(method, _concrete(path), headers={"Authorization": "Bearer crl_x"})
    assert bad.status_code == 401


@pytest.mark.parametrize(("name", "method", "path"), _FINITE, ids=[r[0] for r in _FINITE])
def test_viewer_cannot_mutate(api: Api, name: str, method: str, path: str) -> None:
    if name in PUBLIC:
        return
    answer = api.client.request(method, _concrete(path), headers=api.headers(Role.VIEWER))
    if (method in MUTATING and name not in SELF_SERVICE | VIEWER_POSTS) or name in ADMIN_READS:
        assert answer.status_code == 403, answer.text
        assert "viewer" in answer.json()["detail"]
    else:
        assert answer.status_code != 403, answer.text


def test_operator_cannot_administer(api: Api) -> None:
    for method, path in [("POST", "/api/v1/users"), ("POST", "/api/v1/hosts")]:
        answer = api.client.request(method, path, json={}, headers=api.headers(Role.OPERATOR))
        assert answer.status_code == 403


def test_denied_calls_are_audited(api: Api) -> None:
    api.client.post("/api/v1/vms/x/start", headers=api.headers(Role.VIEWER))
    entries = api.client.get("/api/v1/audit?action=vm.start", headers=api.headers()).json()["items"]
    assert entries[0]["user"] == "viewer"
    assert entries[0]["outcome"] == "denied"
    assert entries[0]["target"] == "x"


def test_websocket_routes_require_an_operator(api: Api) -> None:
    assert _WS_ROUTES
    for path in _WS_ROUTES:
        for headers, expected in (({}, 401), (api.headers(Role.VIEWER), 403)):
            refused = (WebSocketDisconnect, WebSocketDenialResponse)
            with (
                pytest.raises(refused) as caught,
                api.client.websocket_connect(_concrete(path), headers=headers),
            ):
                pass
            assert isinstance(caught.value, WebSocketDenialResponse)
            assert caught.value.status_code == expected
            assert caught.value.json()["status"] == expected
