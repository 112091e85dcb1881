"""``/storage-domains`` on libvirt's test:///default driver: the built-in local domain, the
refusals (unknown kinds, the reserved name, deleting local, roles) and their audit entries."""

from __future__ import annotations

from typing import Any

import pytest

from corral.model.auth import Role
from tests.unit.api.conftest import Api


def _post(api: Api, body: dict[str, Any], role: Role = Role.ADMIN) -> Any:
    return api.client.post("/api/v1/storage-domains", json=body, headers=api.headers(role))


def test_the_local_domain_is_listed_first_with_each_host(api: Api) -> None:
    answer = api.client.get("/api/v1/storage-domains", headers=api.headers(Role.VIEWER))
    assert answer.status_code == 200, answer.text
    local = answer.json()[0]
    assert local["name"] == "local" and local["kind"] == "local" and local["builtin"]
    [test] = [h for h in local["hosts"] if h["host"] == "test"]
    assert test["state"] == "reachable" and test["capacity_bytes"] > 0
    ops = {o["operation"]: o["supported"] for o in local["operations"]}
    assert ops["create_volume"] and ops["linked_clone"] and ops["upload"]


def test_the_local_domain_cannot_be_deleted_or_made(api: Api) -> None:
    answer = api.client.delete("/api/v1/storage-domains/local", headers=api.headers())
    assert answer.status_code == 409, answer.text
    assert "cannot be deleted" in answer.json()["detail"]
    made = _post(api, {"kind": "shared-dir", "name": "local", "path": "/srv/x"})
    assert made.status_code == 409, made.text
    assert "built-in" in made.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        # iscsi has its driver (tests/integration/storage/test_iscsi_domain.py).
        {"kind": "nfs", "name": "sd-nfs", "server": "198.18.0.254", "export": "/export"},
    ],
)
def test_a_kind_without_a_driver_is_refused_and_nothing_recorded(
    api: Api, body: dict[str, Any]
) -> None:
    answer = _post(api, body)
    assert answer.status_code == 409, answer.text
    assert f"kind {body['kind']!r} is not available yet" in answer.json()["detail"]
    shown = api.client.get(f"/api/v1/storage-domains/{body['name']}", headers=api.headers())
    assert shown.status_code == 404, shown.text
    audit = api.client.get(
        "/api/v1/audit", params={"action": "storage_domain.create"}, headers=api.headers()
    )
    assert any(e["target"] == body["name"] for e in audit.json())


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "shared-dir", "name": "sd-rel", "path": "relative/dir"},
        {"kind": "rbd", "name": "sd-rbd"},
        {"kind": "nfs", "name": "sd-nfs2", "server": "a b", "export": "/x"},
        {"kind": "iscsi", "name": "sd-i2", "portal": "h", "target": "not-an-iqn"},
        {"name": "sd-nokind", "path": "/x"},
    ],
)
def test_malformed_requests_are_422(api: Api, body: dict[str, Any]) -> None:
    assert _post(api, body).status_code == 422


def test_unknown_domains_are_404_with_a_hint(api: Api) -> None:
    answer = api.client.get("/api/v1/storage-domains/locale", headers=api.headers())
    assert answer.status_code == 404, answer.text
    assert "'local'" in answer.json()["detail"]
    check = api.client.post("/api/v1/storage-domains/nope/check", headers=api.headers())
    assert check.status_code == 404, check.text


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_only_admins_change_domains(api: Api, role: Role) -> None:
    made = _post(api, {"kind": "shared-dir", "name": "sd-role", "path": "/srv/x"}, role)
    assert made.status_code == 403, made.text
    gone = api.client.delete("/api/v1/storage-domains/local", headers=api.headers(role))
    assert gone.status_code == 403, gone.text
