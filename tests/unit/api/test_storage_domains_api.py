"""``/storage-domains`` on libvirt's test:///default driver: the built-in local domain, the
refusals (unknown kinds, the reserved name, deleting local, roles) and their audit entries."""

from __future__ import annotations

from typing import Any

import libvirt
import pytest

from corral.model.auth import Role
from tests.unit.api.conftest import Api


def _post(api: Api, body: dict[str, Any], role: Role = Role.ADMIN) -> Any:
    return api.client.post("/api/v1/storage-domains", json=body, headers=api.headers(role))


def test_the_local_domain_is_listed_first_with_each_host(api: Api) -> None:
    answer = api.client.get("/api/v1/storage-domains", headers=api.headers(Role.VIEWER))
    assert answer.status_code == 200, answer.text
    local = answer.json()["items"][0]
    assert local["name"] == "local" and local["kind"] == "local" and local["builtin"]
    [test] = [h for h in local["hosts"] if h["host"] == "test"]
    assert test["state"] == "reachable" and test["capacity_bytes"] > 0
    ops = {o["operation"]: o["supported"] for o in local["operations"]}
    assert ops["create_volume"] and ops["linked_clone"] and ops["upload"]
    assert local["image_kinds"] == ["iso", "disk", "kernel"]


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


def test_a_shared_dir_no_host_reaches_is_refused_leaving_nothing(api: Api) -> None:
    """The test driver streams no volume, so no marker can be written or read: no host
    reaches the domain, which is refused with each host's reason and left on no host."""
    answer = _post(api, {"kind": "shared-dir", "name": "sd-nowhere", "path": "/srv/nowhere"})
    assert answer.status_code == 409, answer.text
    detail = answer.json()["detail"]
    assert "no host reaches storage domain sd-nowhere" in detail
    assert "host test: cannot write the marker file into /srv/nowhere" in detail
    conn = libvirt.open("test:///default")
    try:
        assert "corral-sd-sd-nowhere" not in [p.name() for p in conn.listAllStoragePools()]
    finally:
        conn.close()
    shown = api.client.get("/api/v1/storage-domains/sd-nowhere", headers=api.headers())
    assert shown.status_code == 404, shown.text


def _volumes_path(domain: str = "local") -> str:
    return f"/api/v1/storage-domains/{domain}/volumes"


def test_local_volumes_are_made_listed_and_deleted(api: Api) -> None:
    """(Growing is the integration tests': the test driver resizes nothing.)"""
    made = api.client.post(
        _volumes_path(), json={"name": "sdv-1", "size_gib": 0.5, "host": "test"},
        headers=api.headers(),
    )  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["domain"] == "local" and made.json()["capacity_bytes"] == 2**29
    shrink = api.client.post(
        f"{_volumes_path()}/sdv-1/resize", json={"size_gib": 0.25}, headers=api.headers()
    )
    assert shrink.status_code == 409 and "only grow" in shrink.json()["detail"]
    listed = api.client.get(_volumes_path(), params={"host": "test"}, headers=api.headers())
    assert "sdv-1" in [v["name"] for v in listed.json()["items"]]
    gone = api.client.delete(f"{_volumes_path()}/sdv-1", headers=api.headers())
    assert gone.status_code == 204, gone.text
    listed = api.client.get(_volumes_path(), headers=api.headers())
    assert "sdv-1" not in [v["name"] for v in listed.json()["items"]]


def test_a_volume_larger_than_the_free_space_is_refused_with_both_numbers(api: Api) -> None:
    answer = api.client.post(
        _volumes_path(), json={"name": "sdv-huge", "size_gib": 65536}, headers=api.headers()
    )
    assert answer.status_code == 409, answer.text
    detail = answer.json()["detail"]
    assert "storage domain local has" in detail and f"needs {65536 * 2**30} bytes" in detail


def test_volumes_of_unknown_domains_are_404(api: Api) -> None:
    answer = api.client.get(_volumes_path("nope"), headers=api.headers())
    assert answer.status_code == 404, answer.text


def test_an_nfs_domain_no_host_reaches_is_refused_naming_each_host(api: Api) -> None:
    """The test driver's host has no host agent, which nfs domains work through."""
    body = {"kind": "nfs", "name": "sd-nfs", "server": "198.18.0.254", "export": "/export"}
    answer = _post(api, body)
    assert answer.status_code == 409, answer.text
    detail = answer.json()["detail"]
    assert "no host reaches storage domain sd-nfs" in detail
    assert "host test:" in detail and "no host agent" in detail
    shown = api.client.get("/api/v1/storage-domains/sd-nfs", headers=api.headers())
    assert shown.status_code == 404, shown.text


def test_a_vm_disk_on_an_unknown_domain_is_404_and_an_import_stays_local(api: Api) -> None:
    unknown = api.client.post(
        "/api/v1/vms",
        json={"name": "sd-vm-1", "disks": [{"size_gib": 1, "domain": "nowhere"}]},
        headers=api.headers(),
    )
    assert unknown.status_code == 404, unknown.text
    assert "no storage domain named 'nowhere'" in unknown.json()["detail"]
    imported = api.client.post(
        "/api/v1/vms",
        json={"name": "sd-vm-2", "disks": [{"import_path": "/srv/x.qcow2", "domain": "sd"}]},
        headers=api.headers(),
    )
    assert imported.status_code == 409, imported.text
    assert "an import goes to the local domain" in imported.json()["detail"]
    shown = api.client.get("/api/v1/vms/sd-vm-1", headers=api.headers())
    assert shown.status_code == 404
