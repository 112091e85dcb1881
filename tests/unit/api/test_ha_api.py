"""HA through the API on the test driver: what is refused and why (nothing changed), and what
switching HA on saves. The fencing and restarts run on the test bed
(tests/integration/ha/)."""

from __future__ import annotations

from typing import Any

from tests.unit.api.conftest import Api

HOST = "test"


def _make(api: Api, name: str, disks: list[dict[str, Any]]) -> None:
    spec: dict[str, Any] = {"name": name, "disks": disks, "nics": []}
    if not disks:  # an empty CD-ROM drive to boot from: no disk, nothing local
        spec.update(boot={"source": "cdrom"}, cdrom_drive=True)
    made = api.client.post("/api/v1/vms", json=spec, headers=api.headers())
    assert made.status_code == 201, made.text


def _ha(api: Api, name: str, **body: Any) -> Any:
    return api.client.put(f"/api/v1/vms/{name}/ha", json=body, headers=api.headers())


def _shown(api: Api, name: str) -> dict[str, Any]:
    answer = api.client.get(f"/api/v1/vms/{name}/ha", headers=api.headers())
    assert answer.status_code == 200, answer.text
    shown: dict[str, Any] = answer.json()
    return shown


def test_a_vm_on_local_storage_is_refused_ha_and_nothing_changes(api: Api) -> None:
    _make(api, "ha-local", [{"size_gib": 1}])
    refused = _ha(api, "ha-local", enabled=True, priority=80)
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert "cannot be highly available" in detail and "local storage" in detail
    assert "corral vm move-disk ha-local vda --to DOMAIN" in detail
    assert _shown(api, "ha-local") == {
        "vm": "ha-local",
        "enabled": False,
        "priority": None,
        "definition_saved_at": None,
        "waiting": None,
    }
    vm = api.client.get("/api/v1/vms/ha-local", headers=api.headers()).json()
    assert vm["ha_priority"] is None


def test_ha_on_saves_the_definition_and_off_forgets_it(api: Api) -> None:
    _make(api, "ha-diskless", [])
    answer = _ha(api, "ha-diskless", enabled=True, priority=70)
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    assert (shown["enabled"], shown["priority"]) == (True, 70)
    assert shown["definition_saved_at"] is not None
    vm = api.client.get("/api/v1/vms/ha-diskless", headers=api.headers()).json()
    assert vm["ha_priority"] == 70
    status = api.client.get("/api/v1/ha", headers=api.headers()).json()
    [host] = [h for h in status["hosts"] if h["host"] == HOST]
    assert (host["state"], host["ha_vms"]) == ("ok", 1)
    off = _ha(api, "ha-diskless", enabled=False)
    assert off.status_code == 200, off.text
    assert _shown(api, "ha-diskless")["definition_saved_at"] is None
    audit = api.client.get(
        "/api/v1/audit", params={"action": "vm.ha"}, headers=api.headers()
    ).json()["items"]
    assert [e["detail"] for e in audit if e["target"] == "ha-diskless"][:2] == [
        "off",
        "on, priority 70",
    ]


def test_out_of_range_priorities_are_refused(api: Api) -> None:
    _make(api, "ha-prio", [])
    for priority in (-1, 101, "high", False, 50.5):  # 45.0 is JSON's 45: taken
        answer = _ha(api, "ha-prio", enabled=True, priority=priority)
        assert answer.status_code == 422, answer.text
    assert _shown(api, "ha-prio")["enabled"] is False


def test_a_host_that_answers_cannot_be_confirmed_down(api: Api) -> None:
    answer = api.client.post(f"/api/v1/hosts/{HOST}/confirm-down", headers=api.headers())
    assert answer.status_code == 409, answer.text
    assert "answers libvirt: it is not down" in answer.json()["detail"]
    host = api.client.get(f"/api/v1/hosts/{HOST}", headers=api.headers()).json()
    assert (host["ha_state"], host["ha_reason"]) == ("ok", "")


def test_an_unknown_vm_or_host_is_404(api: Api) -> None:
    assert _ha(api, "no-such-vm", enabled=True).status_code == 404
    answer = api.client.post("/api/v1/hosts/no-such-host/confirm-down", headers=api.headers())
    assert answer.status_code == 404
