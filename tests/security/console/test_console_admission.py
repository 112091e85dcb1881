"""Console sockets that never speak, on libvirt's test driver (no screen behind: the proxy
never gets as far as asking for one). A browser that has not finished the RFB handshake in time
is closed; a user's sockets are counted from the accept on and refused over the cap (HTTP 429
before the upgrade, audited); deleting the user closes their half-open sockets at once."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from corral.model.auth import Role
from tests.unit.api.conftest import SCREEN_VM, Api, api, ensure_screen_vm

__all__ = ["api"]


@pytest.fixture(scope="module", autouse=True)
def _screen_vm(api: Api) -> str:
    return ensure_screen_vm(api)


VM = SCREEN_VM
GREETING = b"RFB 003.008\n"


@pytest.fixture
def viewer(api: Api) -> Iterator[dict[str, str]]:
    """A viewer of its own (headers with its token); deleted afterwards if the test did not."""
    name = f"viewer-{secrets.token_hex(3)}"
    password = "viewer-password-123"
    made = api.client.post(
        "/api/v1/users",
        json={"name": name, "password": password, "role": "viewer"},
        headers=api.headers(),
    )
    assert made.status_code == 201, made.text
    login = api.client.post("/api/v1/auth/login", json={"username": name, "password": password})
    token = login.json()
    yield {"Authorization": f"Bearer {token['secret']}", "X-User": name, "X-Token": token["id"]}
    api.client.delete(f"/api/v1/users/{name}", headers=api.headers())


def _url(client: TestClient, headers: dict[str, str]) -> str:
    answer = client.post(f"/api/v1/vms/{VM}/console/ticket", json={"kind": "vnc"}, headers=headers)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["url"])


def _closed(ws: object) -> WebSocketDisconnect:
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_bytes()  # type: ignore[attr-defined]
    return closed.value


def test_a_silent_browser_is_closed_after_the_handshake_timeout(api: Api) -> None:
    settings = api.services.settings
    saved, settings.console_handshake_timeout_s = settings.console_handshake_timeout_s, 1.0
    try:
        started = time.monotonic()
        with api.client.websocket_connect(
            _url(api.client, api.headers()), headers=api.headers()
        ) as ws:
            assert ws.receive_bytes() == GREETING
            closed = _closed(ws)  # never answered
        took = time.monotonic() - started
    finally:
        settings.console_handshake_timeout_s = saved
    assert closed.code == 1008
    assert closed.reason == "the viewer did not finish the RFB handshake within 1 s"
    assert 0.9 <= took < 5


def test_half_open_sockets_count_and_close_at_once_when_their_user_is_deleted(
    api: Api, viewer: dict[str, str]
) -> None:
    cap = api.services.settings.console_max_per_user
    user, _ = viewer.pop("X-User"), viewer.pop("X-Token")
    with contextlib.ExitStack() as stack:
        urls = [_url(api.client, viewer) for _ in range(cap)]
        sockets = [
            stack.enter_context(api.client.websocket_connect(url, headers=viewer))
            for url in urls[:-1]
        ]
        spare = _url(api.client, viewer)  # a ticket asked for before the cap was reached
        sockets.append(stack.enter_context(api.client.websocket_connect(urls[-1], headers=viewer)))
        for ws in sockets:
            assert ws.receive_bytes() == GREETING  # accepted; the browser never answers
        # At the cap: no ticket (the page can show why), and a ticket got before is refused at
        # the WebSocket's handshake.
        ticket = api.client.post(
            f"/api/v1/vms/{VM}/console/ticket", json={"kind": "serial"}, headers=viewer
        )
        assert ticket.status_code == 429
        assert f"already holds {cap} open consoles" in ticket.json()["detail"]
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            api.client.websocket_connect(spare, headers=viewer),
        ):
            pass
        assert refused.value.status_code == 429
        assert f"already holds {cap} open consoles" in refused.value.json()["detail"]
        denied = api.client.get(
            "/api/v1/audit", params={"action": "vm.console.vnc", "limit": 20}, headers=api.headers()
        ).json()["items"]
        assert any(e["user"] == user and e["outcome"] == "denied" for e in denied)
        # An operator still gets a console of the same VM: as far as the test driver goes.
        operator = api.headers(Role.OPERATOR)
        with api.client.websocket_connect(_url(api.client, operator), headers=operator) as ws:
            assert ws.receive_bytes() == GREETING
            ws.send_bytes(GREETING)
            assert ws.receive_bytes() == b"\x01\x01"
            ws.send_bytes(b"\x01")
            assert ws.receive_bytes() == b"\0\0\0\0"
            ws.send_bytes(b"\x01")
            closed = _closed(ws)
            assert closed.code == 1011 and "open the screen (VNC)" in closed.reason
        started = time.monotonic()
        assert api.client.delete(f"/api/v1/users/{user}", headers=api.headers()).status_code == 204
        for ws in sockets:
            closed = _closed(ws)
            assert closed.code == 1008 and "user was deleted" in closed.reason
        took = time.monotonic() - started
    # At once: not at the next periodic check (5 s) nor at the handshake timeout (10 s).
    assert took < 2
    assert api.services.consoles.held() == []


def test_a_half_open_socket_closes_at_once_when_its_token_is_revoked(
    api: Api, viewer: dict[str, str]
) -> None:
    _, token_id = viewer.pop("X-User"), viewer.pop("X-Token")
    with api.client.websocket_connect(_url(api.client, viewer), headers=viewer) as ws:
        assert ws.receive_bytes() == GREETING
        started = time.monotonic()
        revoked = api.client.delete(f"/api/v1/tokens/{token_id}", headers=viewer)
        assert revoked.status_code == 204
        closed = _closed(ws)
        took = time.monotonic() - started
    assert closed.code == 1008 and "API token has ended" in closed.reason
    assert took < 2
