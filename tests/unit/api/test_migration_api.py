"""Migration, evacuation and cluster settings through the API on libvirt's test driver: the
refusals that need no second host, the insecure switch and its audit trail."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from corral.model.auth import Role
from tests.unit.api.conftest import NODE_XML, Api


def _audit(api: Api, action: str) -> list[dict[str, Any]]:
    answer = api.client.get(f"/api/v1/audit?action={action}", headers=api.headers())
    entries: list[dict[str, Any]] = answer.json()["items"]
    return entries


def _migrate(api: Api, body: dict[str, Any], role: Role = Role.OPERATOR) -> Any:
    return api.client.post("/api/v1/vms/test/migrate", json=body, headers=api.headers(role))


def test_transports_are_listed_with_what_is_allowed(api: Api) -> None:
    answer = api.client.get("/api/v1/migration/transports", headers=api.headers(Role.VIEWER))
    assert answer.status_code == 200
    listed = {t["name"]: t for t in answer.json()}
    assert {"tls", "ssh", "insecure"} <= set(listed)
    assert listed["tls"]["encrypted"] and listed["tls"]["allowed"]
    assert not listed["insecure"]["encrypted"] and not listed["insecure"]["allowed"]
    assert [t["name"] for t in answer.json()] == sorted(listed)
    # No two enrolled hosts here: nothing stands against any transport.
    assert all(t["usable"] and t["reason"] is None for t in listed.values())


def test_transports_between_a_pair_of_hosts_say_why_not(api: Api, tmp_path: Path) -> None:
    def pair(query: str) -> Any:
        url = f"/api/v1/migration/transports?{query}"
        return api.client.get(url, headers=api.headers(Role.VIEWER))

    assert pair("source=test").status_code == 422
    assert pair("source=test&destination=test").status_code == 422
    assert pair("source=test&destination=nope").status_code == 404
    node = tmp_path / "node.xml"
    node.write_text(NODE_XML)
    hosts = api.services.hosts

    async def register() -> None:  # a second host, as the configuration registers one
        uri = f"test://{node}"
        await hosts.register("far", uri, None, await hosts.identify("far", uri))

    assert api.client.portal is not None
    api.client.portal.call(register)
    try:
        answer = pair("source=test&destination=far")
        assert answer.status_code == 200, answer.text
        listed = {t["name"]: t for t in answer.json()}
        assert not listed["ssh"]["usable"]
        assert "destination host far has no address or SSH access" in listed["ssh"]["reason"]
        assert not listed["tls"]["usable"]
        assert "source host test was added by URI, not enrolled" in listed["tls"]["reason"]
    finally:
        api.client.delete("/api/v1/hosts/far", headers=api.headers())


def test_bad_requests_are_refused_before_any_task(api: Api) -> None:
    same = _migrate(api, {"to": "test"})
    assert same.status_code == 409, same.text
    assert "already runs on host test" in same.json()["detail"]
    unknown = _migrate(api, {"to": "nope"})
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "unknown destination host 'nope'"
    transport = _migrate(api, {"to": "h2", "transport": "carrier-pigeon"})
    assert transport.status_code == 404
    assert "known: insecure, ssh, tls" in transport.json()["detail"]
    for body in ({"to": "h2", "max_downtime_ms": 0}, {"to": "h2", "colour": "red"}, {}):
        assert _migrate(api, body).status_code == 422
    assert api.client.post("/api/v1/vms/nope/migrate", json={"to": "test"},
                           headers=api.headers()).status_code == 404  # fmt: skip
    viewer = _migrate(api, {"to": "test"}, Role.VIEWER)
    assert viewer.status_code == 403
    tasks = api.client.get("/api/v1/tasks", headers=api.headers()).json()["items"]
    assert not [t for t in tasks if t["kind"] == "vm.migrate"]


def test_a_shut_off_vm_does_not_migrate(api: Api) -> None:
    assert api.client.post("/api/v1/vms/test/stop", headers=api.headers()).status_code == 200
    try:
        answer = _migrate(api, {"to": "test"})
        assert answer.status_code == 409
        assert "VM test is shut off: live migration moves a running VM" in answer.json()["detail"]
    finally:
        api.client.post("/api/v1/vms/test/start", headers=api.headers())


def test_insecure_needs_the_cluster_switch_and_is_audited_either_way(api: Api) -> None:
    refused = _migrate(api, {"to": "test", "transport": "insecure"})
    assert refused.status_code == 403
    detail = refused.json()["detail"]
    assert "unencrypted" in detail and "allow_insecure_migration true" in detail
    [entry] = _audit(api, "vm.migrate.unencrypted")
    assert entry["outcome"] == "denied" and entry["user"] == "operator"
    assert "allow_insecure_migration is off" in entry["detail"]
    assert _audit(api, "vm.migrate")[0]["outcome"] == "denied"

    # Only an admin turns it on; the change is audited with the old and new value.
    body = {"allow_insecure_migration": True}
    headers = api.headers(Role.OPERATOR)
    assert (
        api.client.patch("/api/v1/cluster/settings", json=body, headers=headers).status_code == 403
    )
    on = api.client.patch("/api/v1/cluster/settings", json=body, headers=api.headers())
    assert on.status_code == 200 and on.json()["allow_insecure_migration"] is True
    [change] = _audit(api, "cluster.setting")
    assert (change["target"], change["detail"]) == ("allow_insecure_migration", "False -> True")
    try:
        # Now the request passes the consent check (and meets the next one).
        allowed = _migrate(api, {"to": "test", "transport": "insecure"})
        assert allowed.status_code == 409  # the same host: the next check
        assert _audit(api, "vm.migrate.unencrypted")[0]["outcome"] == "ok"
        listed = api.client.get("/api/v1/migration/transports", headers=api.headers(Role.VIEWER))
        assert {t["name"]: t["allowed"] for t in listed.json()}["insecure"] is True
    finally:
        off = {"allow_insecure_migration": False}
        api.client.patch("/api/v1/cluster/settings", json=off, headers=api.headers())
    shown = api.client.get("/api/v1/cluster/settings", headers=api.headers(Role.VIEWER))
    assert shown.json()["allow_insecure_migration"] is False
    assert shown.json()["power_policy"] == "manual"  # the other settings keep their defaults
    bad = api.client.patch("/api/v1/cluster/settings", json={"x": 1}, headers=api.headers())
    assert bad.status_code == 422


def test_evacuating_the_only_host_puts_it_in_maintenance_and_says_why_vms_stay(api: Api) -> None:
    operator = api.client.post("/api/v1/hosts/test/evacuate", headers=api.headers(Role.OPERATOR))
    assert operator.status_code == 403
    answer = api.client.post("/api/v1/hosts/test/evacuate", headers=api.headers())
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["id"]
    try:
        deadline = time.monotonic() + 30
        while (task := api.client.get(f"/api/v1/tasks/{task_id}", headers=api.headers()).json())[
            "state"
        ] in ("pending", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert task["state"] == "failed"
        assert "no host can take VM test" in task["error"]
        host = api.client.get("/api/v1/hosts/test", headers=api.headers()).json()
        assert host["status"] == "maintenance"
    finally:
        api.client.put("/api/v1/hosts/test/maintenance", json={"enabled": False},
                       headers=api.headers())  # fmt: skip
