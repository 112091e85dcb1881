"""``POST /vms/{name}/disks/{disk}/move`` on libvirt's test driver: every refusal is a clear 4xx
before anything is made (no task, no new volume), and is audited. The copies themselves need
QEMU: tests/integration/api/test_move_disk.py."""

from __future__ import annotations

from typing import Any

import pytest

from corral.model.auth import Role
from tests.unit.api.conftest import Api


def _vm(api: Api, name: str, **spec: Any) -> None:
    body = {"name": name, "disks": [{"name": "data", "size_gib": 1}], "nics": [], **spec}
    made = api.client.post("/api/v1/vms", json=body, headers=api.headers())
    assert made.status_code == 201, made.text


def _move(api: Api, vm: str, disk: str, body: Any, role: Role = Role.OPERATOR) -> Any:
    return api.client.post(
        f"/api/v1/vms/{vm}/disks/{disk}/move", json=body, headers=api.headers(role)
    )


def _volumes(api: Api) -> set[str]:
    answer = api.client.get("/api/v1/volumes", headers=api.headers())
    return {v["name"] for v in answer.json()["items"]}


def _tasks(api: Api) -> list[Any]:
    answer = api.client.get("/api/v1/tasks", headers=api.headers())
    return [t for t in answer.json()["items"] if t["kind"] == "vm.disk.move"]


@pytest.fixture(scope="module")
def mover(api: Api) -> str:
    _vm(api, "md-1")
    return "md-1"


def test_unknown_vm_disk_and_domain_are_404(api: Api, mover: str) -> None:
    answer = _move(api, "md-none", "vda", {"to": "local"})
    assert answer.status_code == 404, answer.text
    answer = _move(api, mover, "vdz", {"to": "local"})
    assert answer.status_code == 404, answer.text
    assert "has no disk 'vdz'; its disks: data (vda)" in answer.json()["detail"]
    answer = _move(api, mover, "data", {"to": "shared-nowhere"})
    assert answer.status_code == 404, answer.text
    assert "shared-nowhere" in answer.json()["detail"]


def test_a_disk_already_on_the_domain_is_409(api: Api, mover: str) -> None:
    before = _volumes(api)
    answer = _move(api, mover, "data", {"to": "local"})
    assert answer.status_code == 409, answer.text
    assert answer.json()["detail"] == (
        "disk data (vda) of VM 'md-1' is on storage domain local already"
    )
    assert _volumes(api) == before and _tasks(api) == []


def test_a_cdrom_drive_is_409(api: Api) -> None:
    _vm(api, "md-cd", cdrom_drive=True)
    vm = api.client.get("/api/v1/vms/md-cd", headers=api.headers()).json()
    [cdrom] = [d for d in vm["disks"] if d["device"] == "cdrom"]
    answer = _move(api, "md-cd", cdrom["target"], {"to": "local"})
    assert answer.status_code == 409, answer.text
    assert "is a CD-ROM drive" in answer.json()["detail"]


def test_a_vm_with_snapshots_is_409_naming_them(api: Api) -> None:
    _vm(api, "md-snap")
    taken = api.client.post(
        "/api/v1/vms/md-snap/snapshots", json={"name": "before"}, headers=api.headers()
    )
    assert taken.status_code == 201, taken.text
    answer = _move(api, "md-snap", "vda", {"to": "local"})
    assert answer.status_code == 409, answer.text
    detail = answer.json()["detail"]
    assert "has snapshots (before)" in detail
    assert "`corral vm snapshot delete md-snap before`" in detail


@pytest.mark.parametrize(
    "body", [{}, {"to": "a/b"}, {"to": "local", "keep_source": "sometimes"}, {"to": "x", "y": 1}]
)
def test_malformed_requests_are_422(api: Api, mover: str, body: Any) -> None:
    assert _move(api, mover, "vda", body).status_code == 422


def test_viewers_cannot_move_and_refusals_are_audited(api: Api, mover: str) -> None:
    _move(api, mover, "data", {"to": "local"})
    assert _move(api, mover, "vda", {"to": "local"}, Role.VIEWER).status_code == 403
    audit = api.client.get(
        "/api/v1/audit", params={"action": "vm.disk.move"}, headers=api.headers()
    )
    assert audit.status_code == 200, audit.text
    outcomes = {(e["user"], e["target"], e["outcome"]) for e in audit.json()["items"]}
    refused = "error: disk data (vda) of VM 'md-1' is on storage domain local already"
    assert ("operator", "md-1/data", refused) in outcomes
