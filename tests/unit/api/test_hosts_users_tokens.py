"""Hosts, users and tokens through the API (libvirt's test:/// driver as the hosts)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.model.auth import Role
from tests.unit.api.conftest import PASSWORD, Api, running_api


def test_unreachable_host_is_refused_and_not_recorded(api: Api) -> None:
    answer = api.client.post(
        "/api/v1/hosts",
        json={"name": "ghost", "uri": "qemu+tls://127.0.0.1:1/system"},  # nothing listens
        headers=api.headers(),
    )
    assert answer.status_code == 503, answer.text
    assert "cannot connect" in answer.json()["detail"]
    assert api.client.get("/api/v1/hosts/ghost", headers=api.headers()).status_code == 404


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("0", "must be a libvirt URI"),
        ("qemu:///sys\x00tem", "must be a libvirt URI"),
        ("qemu:///system\x1b[2J", "must be a libvirt URI"),
        ("qemu:///system\ud800", "valid string"),
        ("qemu:///syst\u00e8me", "must be a libvirt URI"),
        ("qemu+ssh:///system", "qemu+ssh://[USER@]HOST[:PORT]/system"),
        ("qemu:///", "must be a libvirt URI"),
        ("http://h2/system", "must be a libvirt URI"),
        ("qemu:///system with spaces", "must be a libvirt URI"),
    ],
)
def test_malformed_uris_are_refused_with_the_rule(api: Api, uri: str, says: str) -> None:
    # Built by hand: a lone surrogate cannot pass through a JSON encoder.
    body = '{"name": "bad-uri", "uri": ' + json.dumps(uri) + "}"
    answer = api.client.post(
        "/api/v1/hosts",
        content=body.encode("utf-8", "surrogatepass"),
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    detail = answer.json()["detail"]
    assert detail.startswith("uri: ") and says in detail
    assert api.client.get("/api/v1/hosts/bad-uri", headers=api.headers()).status_code == 404


def test_one_libvirt_host_is_registered_once(api: Api) -> None:
    # "test" is test:///default already: the same daemon under another name is refused.
    again = api.client.post(
        "/api/v1/hosts", json={"name": "again", "uri": "test:///default"}, headers=api.headers()
    )
    assert again.status_code == 409, again.text
    assert "already registered as 'test'" in again.json()["detail"]
    names = [
        h["name"] for h in api.client.get("/api/v1/hosts", headers=api.headers()).json()["items"]
    ]
    assert "again" not in names


def test_a_host_with_vms_cannot_be_removed(api: Api) -> None:
    # The test driver's own domain "test" was adopted on host "test" at start-up.
    answer = api.client.delete("/api/v1/hosts/test", headers=api.headers())
    assert answer.status_code == 409
    assert "migrate or delete them first" in answer.json()["detail"]


def test_users_roles_and_the_last_admin(api: Api) -> None:
    made = api.client.post(
        "/api/v1/users",
        json={"name": "alice", "password": PASSWORD, "role": "operator"},
        headers=api.headers(),
    )
    assert made.status_code == 201 and made.json()["role"] == "operator"
    short = api.client.post(
        "/api/v1/users", json={"name": "bob", "password": "short"}, headers=api.headers()
    )
    assert short.status_code == 422 and "password" in short.json()["detail"]
    login = api.client.post("/api/v1/auth/login", json={"username": "alice", "password": "x"})
    assert login.status_code == 401 and "wrong user name or password" in login.json()["detail"]
    me = api.client.delete("/api/v1/users/admin", headers=api.headers())
    assert me.status_code == 409 and "own user" in me.json()["detail"]
    assert api.client.delete("/api/v1/users/alice", headers=api.headers()).status_code == 204


def test_tokens_are_shown_once_and_revocable(api: Api) -> None:
    made = api.client.post(
        "/api/v1/tokens",
        json={"name": "ci", "expires_in_days": 1},
        headers=api.headers(Role.VIEWER),
    )
    assert made.status_code == 201
    secret, token_id = made.json()["secret"], made.json()["id"]
    mine = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/api/v1/auth/whoami", headers=mine).json()["name"] == "viewer"
    listed = api.client.get("/api/v1/tokens", headers=api.headers(Role.VIEWER)).json()["items"]
    assert all("secret" not in t for t in listed)
    assert {t["user"] for t in listed} == {"viewer"}
    # Another user cannot even see that the token exists.
    other = api.client.delete(f"/api/v1/tokens/{token_id}", headers=api.headers(Role.OPERATOR))
    assert other.status_code == 404
    revoked = api.client.delete(f"/api/v1/tokens/{token_id}", headers=mine)
    assert revoked.status_code == 204
    assert api.client.get("/api/v1/auth/whoami", headers=mine).status_code == 401


def _expires_in(answer: Any) -> timedelta | None:
    """How long from now the token of a login's answer lives (None: forever)."""
    assert answer.status_code == 201, answer.text
    expires = answer.json()["expires_at"]
    if expires is None:
        return None
    at = datetime.fromisoformat(expires)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)) - datetime.now(UTC)


def test_a_login_token_expires(api: Api, tmp_path: Path) -> None:
    login = {"username": "viewer", "password": PASSWORD}
    lifetime = _expires_in(api.client.post("/api/v1/auth/login", json=login))
    assert lifetime is not None and timedelta(days=29, hours=23) < lifetime <= timedelta(days=30)
    asked = api.client.post("/api/v1/auth/login", json={**login, "expires_in_days": 2})
    lifetime = _expires_in(asked)
    assert lifetime is not None and timedelta(days=1, hours=23) < lifetime <= timedelta(days=2)
    never = api.client.post("/api/v1/auth/login", json={**login, "expires_in_days": 0})
    assert never.status_code == 422 and "expires_in_days" in never.json()["detail"]
    with running_api(tmp_path, api_login_token_days=0) as forever:
        assert _expires_in(forever.client.post("/api/v1/auth/login", json=login)) is None


def test_secrets_never_reach_the_audit_log(api: Api) -> None:
    api.client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD})
    entries = api.client.get("/api/v1/audit?limit=1000", headers=api.headers()).json()["items"]
    text = repr(entries)
    assert PASSWORD not in text
    assert not any(secret in text for secret in api.tokens.values())
    assert any(e["action"] == "auth.login" and e["user"] == "admin" for e in entries)


def test_password_guessing_is_throttled(api: Api) -> None:
    for _ in range(5):
        wrong = api.client.post(
            "/api/v1/auth/login", json={"username": "operator", "password": "guess"}
        )
        assert wrong.status_code == 401
    blocked = api.client.post(
        "/api/v1/auth/login", json={"username": "operator", "password": PASSWORD}
    )
    assert blocked.status_code == 429
    assert "too many failed logins" in blocked.json()["detail"]
    # Other users are not affected.
    other = api.client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD})
    assert other.status_code == 201
    # Nor is the same user from another address: the guesser cannot lock them out.
    elsewhere = TestClient(api.client.app, client=("198.18.0.7", 50001))
    real = elsewhere.post("/api/v1/auth/login", json={"username": "operator", "password": PASSWORD})
    assert real.status_code == 201, real.text
