"""Bad input gets a 4xx problem+json that says what to change, and leaves nothing behind."""

from __future__ import annotations

from typing import Any

import libvirt
import pytest

from corral import store
from corral.model.auth import Role
from tests.unit.api.conftest import Api


def _inventory(api: Api) -> tuple[set[str], set[str], set[str]]:
    """What exists, read independently of Corral: libvirt's own view, and the database."""
    conn = libvirt.open("test:///default")
    try:
        domains = {d.name() for d in conn.listAllDomains()}
        volumes: set[str] = set()
        for pool in conn.listAllStoragePools():
            if pool.isActive():
                pool.refresh()
                volumes |= set(pool.listVolumes())
    finally:
        conn.close()
    rows = {vm.name for vm in api.services.db.sync(store.list_vms)}
    return domains, volumes, rows


def _disk(**kw: Any) -> dict[str, Any]:
    return {"size_gib": 1, **kw}


BAD_SPECS: list[tuple[str, dict[str, Any] | bytes, int, str]] = [
    ("name too long", {"name": "a" * 64, "disks": [_disk()]}, 422, "at most 63 characters"),
    ("empty name", {"name": "", "disks": [_disk()]}, 422, "name"),
    ("space in name", {"name": "web 1", "disks": [_disk()]}, 422, "1-63 characters"),
    ("slash in name", {"name": "a/b", "disks": [_disk()]}, 422, "1-63 characters"),
    ("xml in name", {"name": "<web>", "disks": [_disk()]}, 422, "1-63 characters"),
    ("ampersand in name", {"name": "a&b", "disks": [_disk()]}, 422, "1-63 characters"),
    ("dot-dot name", {"name": "a..b", "disks": [_disk()]}, 422, "'..'"),
    ("dot-dot disk", {"name": "d1", "disks": [_disk(name="../etc")]}, 422, "1-63 characters"),
    ("memory beyond host", {"name": "m1", "memory_mib": 10**6, "disks": [_disk()]}, 409, "MiB"),
    ("vcpus beyond host", {"name": "c1", "vcpus": 500, "disks": [_disk()]}, 409, "vCPUs"),
    ("unknown host", {"name": "h1", "host": "nowhere", "disks": [_disk()]}, 404, "unknown host"),
    (
        # Outside host_path_roots (none here): refused before the file is looked for.
        "image outside the roots",
        {"name": "i1", "disks": [{"import_path": "/nonexistent/disk.qcow2"}]},
        403,
        "host_path_roots",
    ),
    ("relative image", {"name": "i2", "disks": [{"import_path": "disk.qcow2"}]}, 422, "absolute"),
    (
        "kernel outside the roots",
        {"name": "k1", "boot": {"source": "kernel", "kernel": "/nonexistent/vmlinuz"}},
        403,
        "host_path_roots",
    ),
    ("two disk sources", {"name": "t1", "disks": [_disk(base_image="x")]}, 422, "exactly one"),
    ("unknown base", {"name": "b1", "disks": [{"base_image": "nope"}]}, 404, "base image"),
    ("unknown field", {"name": "u1", "disks": [_disk()], "colour": "red"}, 422, "unknown field"),
    ("negative memory", {"name": "n1", "memory_mib": -5, "disks": [_disk()]}, 422, "memory_mib"),
    ("malformed json", b'{"name": "x",', 422, "not valid JSON"),
    ("not an object", b"[1, 2]", 422, "JSON object"),
]


@pytest.mark.parametrize(
    ("spec", "status", "words"), [b[1:] for b in BAD_SPECS], ids=[b[0] for b in BAD_SPECS]
)
def test_bad_create_is_refused_cleanly(
    api: Api, spec: dict[str, Any] | bytes, status: int, words: str
) -> None:
    before = _inventory(api)
    if isinstance(spec, bytes):
        headers = {**api.headers(), "Content-Type": "application/json"}
        answer = api.client.post("/api/v1/vms", content=spec, headers=headers)
    else:
        answer = api.client.post("/api/v1/vms", json=spec, headers=api.headers())
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == status
    assert words in body["detail"], body["detail"]
    assert _inventory(api) == before


def test_duplicate_name_is_refused_cleanly(api: Api) -> None:
    spec = {"name": "dup1", "memory_mib": 64, "disks": [_disk()]}
    assert api.client.post("/api/v1/vms", json=spec, headers=api.headers()).status_code == 201
    before = _inventory(api)
    answer = api.client.post("/api/v1/vms", json=spec, headers=api.headers())
    assert answer.status_code == 409
    assert "already exists" in answer.json()["detail"]
    assert _inventory(api) == before


def test_xml_metacharacters_in_description_round_trip(api: Api) -> None:
    text = "</description><evil attr='1'>&amp; \"quoted\" ]]> <!-- ünïcode"
    spec = {"name": "desc1", "memory_mib": 64, "description": text, "disks": [_disk()]}
    answer = api.client.post("/api/v1/vms", json=spec, headers=api.headers())
    assert answer.status_code == 201, answer.text
    shown = api.client.get("/api/v1/vms/desc1", headers=api.headers()).json()
    assert shown["description"] == text
    conn = libvirt.open("test:///default")
    try:
        xml = conn.lookupByName("desc1").XMLDesc()
    finally:
        conn.close()
    assert "<evil" not in xml


def test_unknown_vm_is_404_with_a_hint(api: Api) -> None:
    answer = api.client.post("/api/v1/vms/ghost/start", headers=api.headers())
    assert answer.status_code == 404
    assert "ghost" in answer.json()["detail"]


def test_serial_log_tail_is_counted_in_lines_or_bytes_not_both(api: Api) -> None:
    log = "/api/v1/vms/ghost/log"
    both = api.client.get(log, params={"tail_lines": 5, "tail_bytes": 5}, headers=api.headers())
    assert both.status_code == 422
    assert "tail_lines or tail_bytes" in both.json()["detail"]
    none = api.client.get(log, params={"tail_lines": 0}, headers=api.headers())
    assert none.status_code == 422
    documented = {p["name"] for p in api.client.get("/openapi.json").json()["paths"][
        "/api/v1/vms/{name}/log"]["get"]["parameters"]}  # fmt: skip
    assert {"tail_lines", "tail_bytes"} <= documented


def test_a_mistyped_name_gets_the_close_ones_any_role_may_list(api: Api) -> None:
    spec = {"name": "suggest-web1", "disks": [_disk()]}
    assert api.client.post("/api/v1/vms", json=spec, headers=api.headers()).status_code == 201
    viewer = api.headers(Role.VIEWER)
    shown = api.client.get("/api/v1/vms/sugest-web1", headers=viewer)
    assert shown.status_code == 404
    assert "no VM named 'sugest-web1'; did you mean 'suggest-web1'?" in shown.json()["detail"]
    started = api.client.post("/api/v1/vms/suggest-wb1/start", headers=api.headers())
    assert started.status_code == 404
    assert "did you mean 'suggest-web1'?" in started.json()["detail"]
    far = api.client.get("/api/v1/vms/zzzzzzzz", headers=viewer).json()["detail"]
    assert "did you mean" not in far and "check the name against the list of VMs" in far
    host = api.client.get("/api/v1/hosts/tset", headers=viewer)
    assert host.status_code == 404 and "did you mean 'test'?" in host.json()["detail"]
    nobody = api.client.get("/api/v1/vms/sugest-web1")
    assert nobody.status_code == 401 and "suggest-web1" not in nobody.text
