"""A VM disk that is an existing volume used as is (``disks[].volume``), on libvirt's
test:///default driver with the ``local`` domain: taken without a copy, one VM's at a time
(the refusal names the VM using it), unknown names a 404 listing the domain's volumes, and a
delete without ``delete_disks`` keeps it. (iSCSI LUNs: tests/integration/storage.)"""

from __future__ import annotations

from typing import Any

from tests.unit.api.conftest import Api

VOLUMES = "/api/v1/storage-domains/local/volumes"


def _vm(api: Api, name: str, **disk: Any) -> Any:
    body = {"name": name, "disks": [{"name": "data", **disk}], "nics": []}
    return api.client.post("/api/v1/vms", json=body, headers=api.headers())


def test_an_existing_volume_is_one_vms_disk_at_a_time(api: Api) -> None:
    made = api.client.post(
        VOLUMES, json={"name": "xv-data", "size_gib": 0.25, "host": "test"}, headers=api.headers()
    )
    assert made.status_code == 201, made.text
    path = made.json()["path"]
    first = _vm(api, "xv-1", volume="xv-data")
    assert first.status_code == 201, first.text
    assert [d["path"] for d in first.json()["disks"] if d["device"] == "disk"] == [path]
    again = _vm(api, "xv-2", volume="xv-data")
    assert again.status_code == 409, again.text
    assert "is used by VM xv-1" in again.json()["detail"]
    assert api.client.get("/api/v1/vms/xv-2", headers=api.headers()).status_code == 404

    gone = api.client.delete("/api/v1/vms/xv-1", headers=api.headers())
    assert gone.status_code == 204, gone.text
    listed = api.client.get(VOLUMES, params={"host": "test"}, headers=api.headers()).json()["items"]
    assert "xv-data" in [v["name"] for v in listed]  # kept: it was not made for the VM
    reused = _vm(api, "xv-2", volume="xv-data")
    assert reused.status_code == 201, reused.text
    assert api.client.delete(
        "/api/v1/vms/xv-2", params={"delete_disks": "true"}, headers=api.headers()
    ).is_success
    assert api.client.delete(f"{VOLUMES}/xv-data", headers=api.headers()).status_code == 404


def test_an_unknown_volume_is_404_naming_the_domains_volumes(api: Api) -> None:
    made = api.client.post(
        VOLUMES, json={"name": "xv-known", "size_gib": 0.25, "host": "test"}, headers=api.headers()
    )
    assert made.status_code == 201, made.text
    try:
        answer = _vm(api, "xv-3", volume="xv-nope")
        assert answer.status_code == 404, answer.text
        detail = answer.json()["detail"]
        assert "no volume 'xv-nope' in Corral's pool" in detail and "xv-known" in detail
        unknown = _vm(api, "xv-3", volume="lun-1", domain="nowhere")
        assert unknown.status_code == 404, unknown.text
        assert "no storage domain named 'nowhere'" in unknown.json()["detail"]
    finally:
        api.client.delete(f"{VOLUMES}/xv-known", headers=api.headers())


def test_a_disk_has_exactly_one_source(api: Api) -> None:
    answer = _vm(api, "xv-4", volume="xv-a", size_gib=1)
    assert answer.status_code == 422, answer.text
    assert "volume (an existing volume of its domain, used as is)" in answer.text
