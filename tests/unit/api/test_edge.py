"""The edge, in process: Host names, proxy headers, the body ceiling (the app on test:///default).

The same rules against a real ``corral serve`` (uvicorn, memory measured) are in
``tests/integration/api/test_edge.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from starlette.websockets import WebSocketDisconnect

from corral.api.app import create_app
from corral.api.host_check import HostCheck, host_name
from corral.config import Settings
from corral.model.auth import Role
from corral.services.runtime import Services
from tests.unit.api.conftest import PASSWORD, Api

LOGIN = "/api/v1/auth/login"


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost:8080", "localhost"),
        ("[::1]:8080", "::1"),
        ("::1", "::1"),
        ("Corral.Example.", "corral.example"),
        ("198.18.0.9", "198.18.0.9"),
    ],
)
def test_host_header_names(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:8080", "[::1]:8080", "127.0.0.2"])
def test_loopback_names_are_served(api: Api, host: str) -> None:
    answer = api.client.get("/healthz", headers={"Host": host})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/vms", LOGIN, "/login"])
def test_a_foreign_host_gets_400_naming_the_setting(api: Api, path: str) -> None:
    """A DNS name rebound to this machine is not one of Corral's: refused before anything
    (authentication, the body) is looked at."""
    answer = api.client.post(
        path,
        json={"username": "admin", "password": "x"},
        headers={**api.headers(), "Host": "rebound.example:8080"},
    )
    assert answer.status_code == 400, answer.text
    assert "'rebound.example'" in answer.json()["detail"]
    assert "`public_names`" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("host", "server"),
    [
        ("192.0.2.10:8443", "192.0.2.10"),
        ("192.0.2.10", "::ffff:192.0.2.10"),
        ("[2001:db8::1]", "2001:db8::1"),
    ],
)
def test_the_address_connected_to_is_served(api: Api, host: str, server: str) -> None:
    """Listening on every address: a client that typed one of the machine's addresses."""
    check = HostCheck(api.client.app, Settings(listen_host="0.0.0.0"))
    assert check.accepts(host_name(host), {"server": (server, 8443)})
    assert not check.accepts(host_name(host), {"server": ("192.0.2.11", 8443)})


def test_a_foreign_host_cannot_open_a_websocket(api: Api) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        api.client.websocket_connect(
            "/api/v1/vms/none/serial", headers={"Host": "rebound.example"}
        ),
    ):
        pass
    assert closed.value.code == 1008


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An app behind a proxy at 198.18.0.1 named corral.example, with a 4 KiB body ceiling."""
    tmp_path = tmp_path_factory.mktemp("proxied")
    settings = Settings(
        data_dir=tmp_path,
        local_host_name="test",
        local_host_uri="test:///default",
        pool_dir=str(tmp_path / "pool"),
        reconcile_interval_s=3600,
        trusted_proxies=["198.18.0.0/30"],
        public_names=["corral.example"],
        max_body_bytes=4096,
    )
    services = Services(settings)
    services.auth.create_user_sync("admin", "right-password-1", Role.ADMIN)
    app = create_app(settings, services)
    with TestClient(app, base_url="http://corral.example", client=("198.18.0.1", 4000)) as c:
        yield c


def _fail_logins(client: TestClient, user: str, times: int, **headers: str) -> list[int]:
    return [
        client.post(
            LOGIN, json={"username": user, "password": "guess"}, headers=headers
        ).status_code
        for _ in range(times)
    ]


def test_forwarded_for_from_an_untrusted_peer_is_ignored(api: Api) -> None:
    """Rotating X-Forwarded-For (or Forwarded) does not give a guesser fresh addresses."""
    statuses = [
        api.client.post(
            LOGIN,
            json={"username": "xff-guessed", "password": "guess"},
            headers={"X-Forwarded-For": f"203.0.113.{i}", "Forwarded": f"for=203.0.114.{i}"},
        ).status_code
        for i in range(7)
    ]
    assert statuses == [401] * 5 + [429] * 2


def test_forwarded_for_from_a_trusted_proxy_is_the_client(proxied: TestClient) -> None:
    """Behind a trusted proxy the throttle counts the proxy's clients, not the proxy: one
    guessing client is stopped, another one behind the same proxy is not."""
    guesser = {"X-Forwarded-For": "203.0.113.50"}
    assert _fail_logins(proxied, "admin", 6, **guesser) == [401] * 5 + [429]
    right = {"username": "admin", "password": "right-password-1"}
    other = proxied.post(LOGIN, json=right, headers={"X-Forwarded-For": "203.0.113.51"})
    assert other.status_code == 201, other.text
    # A spoofed entry the client put in front of its real address does not count either:
    # the proxy appends the address it saw, and that is the one believed.
    spoofed = proxied.post(LOGIN, json=right, headers={"X-Forwarded-For": "9.9.9.9, 203.0.113.50"})
    assert spoofed.status_code == 429


def test_a_peer_outside_trusted_proxies_is_its_own_client(proxied: TestClient) -> None:
    outsider = TestClient(
        proxied.app, base_url="http://corral.example", client=("198.18.0.9", 4000)
    )
    statuses = [
        outsider.post(
            LOGIN,
            json={"username": "outsider", "password": "guess"},
            headers={"X-Forwarded-For": f"203.0.113.{100 + i}"},
        ).status_code
        for i in range(6)
    ]
    assert statuses == [401] * 5 + [429]


def test_public_names_are_served(proxied: TestClient) -> None:
    assert proxied.get("/healthz").status_code == 200
    assert proxied.get("/healthz", headers={"Host": "other.example"}).status_code == 400


def test_a_declared_body_over_the_ceiling_is_refused_unread(proxied: TestClient) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"username": "admin", "password": "'
        raise AssertionError("the server read past the headers")  # never asked for

    answer = proxied.post(
        LOGIN,
        content=body(),
        headers={"Content-Length": "150000000", "Content-Type": "application/json"},
    )
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "larger than 4 KiB" in answer.json()["detail"]
    assert "`max_body_bytes`" in answer.json()["detail"]


def test_a_chunked_body_over_the_ceiling_is_refused(proxied: TestClient) -> None:
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"username": "admin", "password": "'
        for _ in range(100):
            sent += 1024
            yield b"x" * 1024

    answer = proxied.post(LOGIN, content=body(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 413, answer.text
    assert "larger than 4 KiB" in answer.json()["detail"]


def test_a_body_under_the_ceiling_is_served(proxied: TestClient) -> None:
    answer = proxied.post(LOGIN, json={"username": "nobody", "password": "p" * 1000})
    assert answer.status_code == 401, answer.text


def test_a_form_over_the_ceiling_gets_a_413_page(proxied: TestClient) -> None:
    answer = proxied.post("/login", data={"username": "admin", "password": "p" * 8000})
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("text/html")
    assert "max_body_bytes" in answer.text


def test_trusted_proxies_must_be_addresses(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'\\*' is not an IP address or network"):
        Settings(data_dir=tmp_path, trusted_proxies=["*"])
    settings = Settings(data_dir=tmp_path, trusted_proxies=["10.1.2.3/8", "::1"])
    assert settings.trusted_proxies == ["10.0.0.0/8", "::1/128"]


def test_a_locked_sqlite_file_answers_503_with_the_reason(api: Api) -> None:
    """Another writer holds the SQLite file past the busy timeout (shortened here from 5 s):
    what needs to write answers 503 naming the database, with ``Retry-After``, from the API
    and the pages; reads go on (they take no lock); all works again once it lets go."""
    engine = api.services.store.engine

    def short_wait(connection: Any, _record: Any) -> None:
        connection.execute("PRAGMA busy_timeout=50")

    browser = TestClient(api.client.app, base_url="http://testserver")
    form = browser.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    credentials = {"username": "admin", "password": PASSWORD}
    event.listen(engine, "connect", short_wait)
    engine.dispose()  # the pooled connections wait 5 s
    holder = sqlite3.connect(engine.url.database or "", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        answer = api.client.post(LOGIN, json=credentials)  # a new token: a write
        page = browser.post("/login", data={**credentials, "csrf_token": form})
        read = api.client.get("/api/v1/vms", headers=api.headers())
        holder.execute("ROLLBACK")
    finally:
        holder.close()
        event.remove(engine, "connect", short_wait)
        engine.dispose()
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "5"
    assert answer.json()["title"] == "Database unavailable"
    assert "database is busy" in answer.json()["detail"]
    assert page.status_code == 503 and page.headers["retry-after"] == "5"  # a page says so too
    assert "database is busy" in page.text
    assert read.status_code == 200, read.text
    assert api.client.post(LOGIN, json=credentials).status_code == 201
