"""``/volumes`` and ``/hosts/{host}/volumes/{name}`` on libvirt's test:///default driver: the
pool's volumes with their users, deletion of what nothing uses, and every refusal."""

from __future__ import annotations

from collections.abc import Iterator

import libvirt
import pytest

from corral.model.auth import Role
from tests.unit._test_pool import MIB, make_raw_volume, pool
from tests.unit.api.conftest import Api

__all__ = ["pool"]  # a fixture, used by name


@pytest.fixture
def vm(api: Api) -> Iterator[str]:
    """A shut-off VM with one disk in the pool, deleted with its disk afterwards."""
    name = "vol-user"
    made = api.client.post(
        "/api/v1/vms", json={"name": name, "disks": [{"size_gib": 1}]}, headers=api.headers()
    )
    assert made.status_code == 201, made.text
    yield name
    api.client.delete(f"/api/v1/vms/{name}", params={"delete_disks": True}, headers=api.headers())


def _volumes(api: Api, role: Role = Role.ADMIN, **params: str) -> dict[str, dict[str, object]]:
    answer = api.client.get("/api/v1/volumes", params=params, headers=api.headers(role))
    assert answer.status_code == 200, answer.text
    return {v["name"]: v for v in answer.json()["items"]}


def test_the_list_names_each_volume_with_its_users(
    api: Api, pool: libvirt.virStoragePool, vm: str
) -> None:
    make_raw_volume(pool, "vol-left-over.qcow2")
    make_raw_volume(pool, "_iso.vol-listed.iso")
    try:
        volumes = _volumes(api, host="test")
        [disk] = [v for v in volumes.values() if v["used_by"] == [vm]]
        assert disk["host"] == "test" and disk["capacity_bytes"] == 2**30
        left = volumes["vol-left-over.qcow2"]
        assert left["used_by"] == [] and left["image"] is None and left["capacity_bytes"] == MIB
        assert volumes["_iso.vol-listed.iso"]["image"] == "vol-listed.iso"
        assert not any(name.endswith(".serial.log") for name in volumes)
    finally:
        for name in ("vol-left-over.qcow2", "_iso.vol-listed.iso"):
            pool.storageVolLookupByName(name).delete(0)


def test_an_unused_volume_is_deleted(api: Api, pool: libvirt.virStoragePool) -> None:
    make_raw_volume(pool, "vol-orphan.qcow2")
    answer = api.client.delete("/api/v1/hosts/test/volumes/vol-orphan.qcow2", headers=api.headers())
    assert answer.status_code == 204, answer.text
    assert "vol-orphan.qcow2" not in pool.listVolumes()
    audit = api.client.get(
        "/api/v1/audit", params={"action": "volume.delete"}, headers=api.headers()
    )
    assert audit.json()["items"][0]["target"] == "test/vol-orphan.qcow2"


def test_a_volume_a_vm_uses_is_refused_naming_the_vm(api: Api, vm: str) -> None:
    [disk] = [v for v in _volumes(api).values() if v["used_by"] == [vm]]
    answer = api.client.delete(f"/api/v1/hosts/test/volumes/{disk['name']}", headers=api.headers())
    assert answer.status_code == 409, answer.text
    assert f"used by VM(s) {vm}" in answer.json()["detail"]
    assert disk["name"] in _volumes(api)


def test_an_image_is_refused_with_the_image_command(api: Api, pool: libvirt.virStoragePool) -> None:
    make_raw_volume(pool, "_iso.vol-kept.iso")
    try:
        answer = api.client.delete(
            "/api/v1/hosts/test/volumes/_iso.vol-kept.iso", headers=api.headers()
        )
        assert answer.status_code == 409, answer.text
        assert "corral image delete vol-kept.iso --host test" in answer.json()["detail"]
    finally:
        pool.storageVolLookupByName("_iso.vol-kept.iso").delete(0)


def test_unknown_volumes_and_hosts_are_404(api: Api) -> None:
    unknown = api.client.delete("/api/v1/hosts/test/volumes/no-such.qcow2", headers=api.headers())
    assert unknown.status_code == 404, unknown.text
    assert "corral volume list --host test" in unknown.json()["detail"]
    nohost = api.client.delete("/api/v1/hosts/nohost/volumes/x.qcow2", headers=api.headers())
    assert nohost.status_code == 404, nohost.text
    assert (
        api.client.get(
            "/api/v1/volumes", params={"host": "nohost"}, headers=api.headers()
        ).status_code
        == 404
    )


def test_a_serial_log_is_no_volume_here(api: Api, pool: libvirt.virStoragePool) -> None:
    make_raw_volume(pool, "vol-vm.serial.log")
    try:
        answer = api.client.delete(
            "/api/v1/hosts/test/volumes/vol-vm.serial.log", headers=api.headers()
        )
        assert answer.status_code == 404, answer.text
    finally:
        pool.storageVolLookupByName("vol-vm.serial.log").delete(0)


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_only_admins_see_and_delete_volumes(
    api: Api, pool: libvirt.virStoragePool, role: Role
) -> None:
    make_raw_volume(pool, "vol-guarded.qcow2")
    try:
        listing = api.client.get("/api/v1/volumes", headers=api.headers(role))
        assert listing.status_code == 403, listing.text
        answer = api.client.delete(
            "/api/v1/hosts/test/volumes/vol-guarded.qcow2", headers=api.headers(role)
        )
        assert answer.status_code == 403, answer.text
        assert "vol-guarded.qcow2" in pool.listVolumes()
    finally:
        pool.storageVolLookupByName("vol-guarded.qcow2").delete(0)
