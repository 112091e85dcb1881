"""The power routes on libvirt's test:///default driver, with a real BMC simulator (OpenIPMI's
``ipmi_sim``) for the driver's failures: bad input is a 4xx problem+json that says what to
change and changes nothing; roles; secrets never in answers, the audit log or the logs; a BMC
that refuses or does not answer leaves the host as it really is, with a clear task error; a
stale plan is planned again, not executed."""

from __future__ import annotations

import logging
import time
from typing import Any

import libvirt
import pytest

from corral import store
from corral.model.auth import Role
from corral.model.placement import Migration, Plan, PolicySettings
from corral.model.power import PowerPlan, PowerPolicyMode
from corral.store.coltypes import utcnow
from corral.testbed.bmc import BmcSimulator, free_udp_port
from tests.unit.api.conftest import BMC_PASSWORD, BMC_USER, Api

HOST = "test"
POWER = f"/api/v1/hosts/{HOST}/power"


def _ipmi(port: object, password: str | None = BMC_PASSWORD, **kw: Any) -> dict[str, Any]:
    driver: dict[str, Any] = {"driver": "ipmi", "address": "127.0.0.1", "port": port}
    driver |= {"user": BMC_USER, **kw}
    if password is not None:
        driver["password"] = password
    return {"driver": driver}


def _problem(answer: Any, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert words in answer.json()["detail"], answer.json()["detail"]


def _wait_task(api: Api, task_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task: dict[str, Any] = api.client.get(
            f"/api/v1/tasks/{task_id}", headers=api.headers()
        ).json()
        if task["state"] in ("succeeded", "failed", "cancelled"):
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish within {timeout} s")


def _stored_power(api: Api) -> store.StoredPower:
    return api.services.db.sync(lambda s: store.get_power(s, HOST))


def _host(api: Api) -> dict[str, Any]:
    info: dict[str, Any] = api.client.get(f"/api/v1/hosts/{HOST}", headers=api.headers()).json()
    return info


def test_plan_and_status_for_every_role_and_nothing_to_do_on_one_local_host(api: Api) -> None:
    for role in Role:
        plan = api.client.get("/api/v1/power/plan", headers=api.headers(role))
        assert plan.status_code == 200, plan.text
    body = plan.json()
    assert body["plan"]["migrations"] == [] and body["plan"]["standby"] == []
    assert len(body["id"]) == 32 and body["mode"] == "manual"
    # The local host is not enrolled: the plan says why it leaves it alone.
    assert any(f"{HOST} was added by URI, not enrolled" in n for n in body["notes"])
    status = api.client.get("/api/v1/power/status", headers=api.headers(Role.VIEWER)).json()
    assert status["mode"] == "manual" and status["placement_policy"] == "power_saving"
    [host] = status["hosts"]
    assert host["name"] == HOST and host["standby"] is False and host["driver"] is None
    assert host["watts"] >= 100.0  # idle watts of the default model at least


BAD_SETTINGS: list[tuple[str, dict[str, Any], int, str]] = [
    ("unknown driver", {"driver": {"driver": "teleport"}}, 422, "driver"),
    ("ipmi without user", {"driver": {"driver": "ipmi", "address": "127.0.0.1"}}, 422, "user"),
    ("port as boolean", _ipmi(True), 422, "not true or false"),
    ("port out of range", _ipmi(70000), 422, "port"),
    ("password too long", _ipmi(623, password="x" * 21), 422, "password"),
    ("bad address", _ipmi(623, address="bmc;reboot"), 422, "address"),
    ("unknown field", {**_ipmi(623), "colour": "red"}, 422, "colour"),
    ("wol bad mac", {"driver": {"driver": "wol", "mac": "52:54:00:zz:00:01"}}, 422, "mac"),
    ("suspend bad target", {"driver": {"driver": "suspend", "target": "nap"}}, 422, "target"),
    ("watts as boolean", {"model": {"idle_w": True}}, 422, "idle_w"),
    ("negative watts", {"model": {"max_w": -1}}, 422, "max_w"),
    ("standby above idle", {"model": {"idle_w": 50, "standby_w": 80}}, 409, "model:"),
    ("ipmi without a password on record", _ipmi(623, password=None), 409, "no BMC password"),
    ("ssh on a host not enrolled", {"driver": {"driver": "ssh"}}, 409, "not enrolled over SSH"),
]


@pytest.mark.parametrize(
    ("why", "body", "status", "words"), BAD_SETTINGS, ids=[c[0] for c in BAD_SETTINGS]
)
def test_bad_driver_settings_are_refused_and_change_nothing(
    api: Api, why: str, body: dict[str, Any], status: int, words: str
) -> None:
    before = _stored_power(api)
    _problem(api.client.put(POWER, json=body, headers=api.headers()), status, words)
    assert _stored_power(api) == before


def test_unknown_host_and_bad_plan_ids(api: Api) -> None:
    h = api.headers()
    _problem(api.client.get("/api/v1/hosts/nowhere/power", headers=h), 404, "nowhere")
    _problem(api.client.post("/api/v1/hosts/nowhere/power-on", headers=h), 404, "nowhere")
    _problem(api.client.post("/api/v1/power/apply", json={"plan_id": "x"}, headers=h), 422, "")
    gone = "0" * 32
    _problem(
        api.client.post("/api/v1/power/apply", json={"plan_id": gone}, headers=h),
        404,
        "get a new one with `corral power plan`",
    )


def test_roles_operators_apply_admins_configure_and_switch(api: Api, bmc: BmcSimulator) -> None:
    viewer, operator = api.headers(Role.VIEWER), api.headers(Role.OPERATOR)
    _problem(api.client.post("/api/v1/power/apply", headers=viewer), 403, "operator")
    for who in (viewer, operator):
        _problem(api.client.put(POWER, json=_ipmi(bmc.port), headers=who), 403, "admin")
        _problem(api.client.post(f"/api/v1/hosts/{HOST}/power-on", headers=who), 403, "admin")
        _problem(api.client.post(f"/api/v1/hosts/{HOST}/power-off", headers=who), 403, "admin")
    assert _stored_power(api).driver is None
    shown = api.client.get(POWER, headers=viewer)
    assert shown.status_code == 200 and shown.json()["driver"] is None


def test_the_bmc_password_is_sealed_and_never_shown(
    api: Api, bmc: BmcSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = api.client.put(POWER, json=_ipmi(bmc.port), headers=api.headers())
    assert answer.status_code == 200, answer.text
    info = answer.json()
    assert info["driver"] == "ipmi" and info["password_set"] is True
    assert info["can_power_on"] and info["can_power_off"]
    assert info["settings"] == {
        "driver": "ipmi", "address": "127.0.0.1", "port": bmc.port, "user": BMC_USER,
    }  # fmt: skip
    stored = _stored_power(api)
    assert stored.secret is not None and BMC_PASSWORD not in stored.secret
    assert "password" not in stored.settings
    # Changing only the model keeps the sealed password.
    kept = api.client.put(
        POWER, json={**_ipmi(bmc.port, password=None), "model": {"idle_w": 60, "max_w": 200}},
        headers=api.headers(),
    )  # fmt: skip
    assert kept.status_code == 200, kept.text
    assert kept.json()["password_set"] and kept.json()["model"]["idle_w"] == 60
    assert _stored_power(api).secret == stored.secret
    everything = [
        api.client.get(path, headers=api.headers()).text
        for path in (POWER, "/api/v1/power/status", "/api/v1/power/plan", "/api/v1/audit")
    ]
    assert not any(BMC_PASSWORD in text for text in everything)
    assert BMC_PASSWORD not in caplog.text


def test_power_off_is_refused_while_the_host_runs_a_vm(api: Api, bmc: BmcSimulator) -> None:
    assert api.client.put(POWER, json=_ipmi(bmc.port), headers=api.headers()).status_code == 200
    answer = api.client.post(f"/api/v1/hosts/{HOST}/power-off", headers=api.headers())
    _problem(answer, 409, "still has 1 VM(s) (test)")
    assert "corral host evacuate test" in answer.json()["detail"]
    assert _host(api)["standby"] is False
    _problem(
        api.client.post(f"/api/v1/hosts/{HOST}/power-on", headers=api.headers()),
        409,
        "is on and connected already",
    )


def test_a_stale_plan_is_planned_again_not_executed(api: Api) -> None:
    """A reviewed plan moves a VM that no longer runs: apply re-plans (nothing to do on this
    host), the task says why, and nothing moved."""
    move = Migration(
        vm="gone", source=HOST, target="elsewhere", memory_mib=256, vcpus=1, reason="empty test"
    )
    stale = PowerPlan(
        id="5" * 32,
        created_at=utcnow(),
        mode=PowerPolicyMode.MANUAL,
        plan=Plan(settings=PolicySettings(), migrations=(move,), standby=(HOST,)),
    )
    api.services.power.planner._keep(stale)  # as if GET /power/plan had made it
    answer = api.client.post(
        "/api/v1/power/apply", json={"plan_id": stale.id}, headers=api.headers(Role.OPERATOR)
    )
    assert answer.status_code == 202, answer.text
    task = _wait_task(api, answer.json()["id"])
    assert task["state"] == "succeeded", task
    result = task["result"]
    assert result["replanned"] is True and result["reviewed_plan_id"] == stale.id
    assert result["plan_id"] != stale.id
    assert "VM gone no longer runs" in result["stale_reasons"]
    assert result["migrations"] == [] and result["standby"] == []
    assert "nothing to do" in task["phase"]
    assert _host(api)["standby"] is False


def _empty_the_host() -> None:
    """test:///default starts with one running domain; the failure tests need an empty host
    (Corral never switches off a host with VMs)."""
    conn = libvirt.open("test:///default")
    try:
        for dom in conn.listAllDomains():
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    finally:
        conn.close()


def _audit_of(api: Api, action: str) -> list[dict[str, Any]]:
    entries = api.client.get(
        "/api/v1/audit", params={"action": action}, headers=api.headers()
    ).json()["items"]
    return [e for e in entries if e["target"] == HOST]


def test_a_bmc_that_refuses_leaves_the_host_running_with_a_clear_error(
    api: Api, bmc: BmcSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    _empty_the_host()
    wrong = "Wrong-pw-123"
    body = _ipmi(bmc.port, password=wrong)
    assert api.client.put(POWER, json=body, headers=api.headers()).status_code == 200
    answer = api.client.post(f"/api/v1/hosts/{HOST}/power-off", headers=api.headers())
    assert answer.status_code == 202, answer.text
    task = _wait_task(api, answer.json()["id"])
    assert task["state"] == "failed"
    error = task["error"]
    assert f"the BMC of host {HOST} at 127.0.0.1:{bmc.port} refused the login" in error
    assert "check the user and password" in error
    assert f"host {HOST} is running and connected; its VMs were not touched" in error
    assert _host(api)["standby"] is False and _host(api)["status"] == "connected"
    # Two entries: the task's outcome, and the request's (accepted: "ok"), which the API
    # writes once it answered: either may be the newer.
    entries = _audit_of(api, "host.power_off")
    [entry, *_] = [e for e in entries if e["outcome"].startswith("error: ")]  # newest first
    assert "refused the login" in entry["outcome"]
    assert wrong not in error + str(entry) and wrong not in caplog.text


def test_a_bmc_that_does_not_answer_leaves_the_host_running(api: Api) -> None:
    _empty_the_host()
    silent = free_udp_port()  # nothing listens there
    body = _ipmi(silent)
    assert api.client.put(POWER, json=body, headers=api.headers()).status_code == 200
    answer = api.client.post(f"/api/v1/hosts/{HOST}/power-off", headers=api.headers())
    assert answer.status_code == 202, answer.text
    task = _wait_task(api, answer.json()["id"], timeout=60)
    assert task["state"] == "failed"
    assert f"127.0.0.1:{silent} did not answer (timed out)" in task["error"]
    assert "check its address, port and network" in task["error"]
    assert f"host {HOST} is running and connected" in task["error"]
    assert _host(api)["standby"] is False
    # The status page agrees, and no power task is left running.
    status = api.client.get("/api/v1/power/status", headers=api.headers()).json()
    assert status["running_task"] is None and status["hosts"][0]["standby"] is False


def test_the_driver_can_be_removed_and_the_change_is_audited(api: Api) -> None:
    answer = api.client.put(POWER, json={"driver": None}, headers=api.headers())
    assert answer.status_code == 200, answer.text
    assert answer.json()["driver"] is None and answer.json()["password_set"] is False
    assert _stored_power(api).secret is None
    assert _audit_of(api, "host.power.configure")[0]["outcome"] == "ok"


def test_a_vm_beyond_the_placement_policy_needs_a_named_host(api: Api) -> None:
    settings = "/api/v1/cluster/settings"
    kept = api.client.get(settings, headers=api.headers()).json()["cpu_overcommit"]
    assert api.client.patch(
        settings, json={"cpu_overcommit": 1.0}, headers=api.headers()
    ).is_success
    try:
        cpus = _host(api)["capabilities"]["cpus"]
        spec = {"name": "wide1", "vcpus": cpus + 1, "memory_mib": 64, "disks": [{"size_gib": 1}]}
        answer = api.client.post("/api/v1/vms", json=spec, headers=api.headers())
        _problem(answer, 409, "no host can take VM wide1")
        detail = answer.json()["detail"]
        assert "cpu_overcommit (1 per CPU)" in detail and "name a host" in detail, detail
        assert api.client.get("/api/v1/vms/wide1", headers=api.headers()).status_code == 404
        # Named, the host takes it: only its own limits apply.
        named = api.client.post("/api/v1/vms", json={**spec, "host": HOST}, headers=api.headers())
        assert named.status_code == 201, named.text
        assert named.json()["host"] == HOST and named.json()["vcpus"] == cpus + 1
    finally:
        api.client.delete("/api/v1/vms/wide1?delete_disks=true", headers=api.headers())
        api.client.patch(settings, json={"cpu_overcommit": kept}, headers=api.headers())
