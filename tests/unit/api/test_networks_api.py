"""``/networks`` and host NIC labels on libvirt's test:///default driver: cluster networks
realised as libvirt networks, their state per host, refusals, drift, audit."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import libvirt

from corral.errors import HostError
from corral.model.auth import Role
from tests.unit.api.conftest import Api, running_api

NETS = "/api/v1/networks"


def _wait_task(api: Api, answer: Any, timeout: float = 30) -> dict[str, Any]:
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task: dict[str, Any] = api.client.get(
            f"/api/v1/tasks/{task_id}", headers=api.headers()
        ).json()
        if task["state"] in ("succeeded", "failed", "cancelled"):
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish within {timeout} s")


def _create(api: Api, **body: Any) -> dict[str, Any]:
    return _wait_task(api, api.client.post(NETS, json=body, headers=api.headers()))


def _show(api: Api, name: str) -> dict[str, Any]:
    answer = api.client.get(f"{NETS}/{name}", headers=api.headers(Role.VIEWER))
    assert answer.status_code == 200, answer.text
    shown: dict[str, Any] = answer.json()
    return shown


def _libvirt_networks() -> dict[str, str]:
    conn = libvirt.open("test:///default")
    try:
        return {n.name(): n.bridgeName() for n in conn.listAllNetworks(0)}
    finally:
        conn.close()


def _audit(api: Api, action: str, target: str) -> list[dict[str, Any]]:
    entries = api.client.get(
        "/api/v1/audit", params={"action": action}, headers=api.headers()
    ).json()["items"]
    return [e for e in entries if e["target"] == target]


def test_a_nat_network_is_realised_on_the_host_and_deleted_from_it(api: Api) -> None:
    task = _create(api, name="net-nat", kind="nat", description="lab")
    assert task["state"] == "succeeded", task
    assert task["result"]["hosts"] == {"test": "applied"}
    shown = _show(api, "net-nat")
    assert shown["kind"] == "nat" and shown["description"] == "lab" and not shown["required"]
    assert [(h["host"], h["state"]) for h in shown["hosts"]] == [("test", "applied")]
    assert shown["bridge"].startswith("crlb-") and len(shown["bridge"]) == 13
    assert _libvirt_networks()["net-nat"] == shown["bridge"]
    listed = api.client.get(NETS, headers=api.headers(Role.VIEWER)).json()["items"]
    assert "net-nat" in [n["name"] for n in listed]
    assert _audit(api, "network.create", "net-nat")[0]["outcome"] == "ok"
    assert _audit(api, "network.apply", "net-nat")[0]["outcome"] == "ok"

    gone = _wait_task(api, api.client.delete(f"{NETS}/net-nat", headers=api.headers()))
    assert gone["state"] == "succeeded", gone
    assert "net-nat" not in _libvirt_networks()
    assert api.client.get(f"{NETS}/net-nat", headers=api.headers()).status_code == 404


def test_bad_networks_are_refused_with_the_reason(api: Api) -> None:
    h = api.headers()
    cases = [
        ({"name": "nat", "kind": "nat"}, 422, "reserved"),
        ({"name": "b1", "kind": "bridge"}, 422, "uplink"),
        ({"name": "v1", "kind": "vxlan"}, 422, "vni"),
        ({"name": "v1", "kind": "vxlan", "vni": 2**24}, 422, "16777215"),
        ({"name": "n1", "kind": "nat", "vni": 5}, 422, "vni"),
        ({"name": "b1", "kind": "bridge", "uplink": "nolabel"}, 409, "labelled 'nolabel'"),
    ]
    for body, status, words in cases:
        answer = api.client.post(NETS, json=body, headers=h)
        assert answer.status_code == status, (body, answer.text)
        assert words in answer.text, (body, answer.text)
    assert api.client.post(NETS, json={"name": "x", "kind": "nat"}, headers=api.headers(
        Role.OPERATOR)).status_code == 403  # fmt: skip


def test_vni_and_names_are_unique(api: Api) -> None:
    first = _create(api, name="vx-a", kind="vxlan", vni=4242)
    # The test driver's host has no management address: no tunnel end, so it fails there.
    assert first["state"] == "failed" and "no management address" in first["error"]
    [state] = _show(api, "vx-a")["hosts"]
    assert state["state"] == "failed" and "corral host enroll" in state["reason"]
    again = api.client.post(NETS, json={"name": "vx-b", "kind": "vxlan", "vni": 4242},
                            headers=api.headers())  # fmt: skip
    assert again.status_code == 409 and "VNI 4242 is taken by network vx-a" in again.text
    same = api.client.post(NETS, json={"name": "vx-a", "kind": "nat"}, headers=api.headers())
    assert same.status_code == 409 and "already exists" in same.text
    _wait_task(api, api.client.delete(f"{NETS}/vx-a", headers=api.headers()))


def test_nic_labels_name_the_uplink_of_bridge_networks(api: Api) -> None:
    h = api.headers()
    nics = api.client.get("/api/v1/hosts/test/nics", headers=api.headers(Role.VIEWER)).json()[
        "items"
    ]
    assert [n["name"] for n in nics] == ["eth1"] and nics[0]["labels"] == []
    missing = api.client.put("/api/v1/hosts/test/nics/eth9/labels/lan", headers=h)
    assert missing.status_code == 404 and "eth1" in missing.text
    done = api.client.put("/api/v1/hosts/test/nics/eth1/labels/lan", headers=h)
    assert done.status_code == 200, done.text
    nics = api.client.get("/api/v1/hosts/test/nics", headers=h).json()["items"]
    assert nics[0]["labels"] == ["lan"]
    try:
        task = _create(api, name="br-lan", kind="bridge", uplink="lan")
        # No host agent in this build: the bridge cannot be made, nothing is left behind.
        assert task["state"] == "failed" and "host agent" in task["error"], task
        assert "br-lan" not in _libvirt_networks()
        _wait_task(api, api.client.delete(f"{NETS}/br-lan", headers=h))
    finally:
        gone = api.client.delete("/api/v1/hosts/test/nics/eth1/labels/lan", headers=h)
        assert gone.status_code == 204
    again = api.client.delete("/api/v1/hosts/test/nics/eth1/labels/lan", headers=h)
    assert again.status_code == 404


def test_a_network_in_use_is_not_deleted_and_the_answer_names_the_vm(api: Api) -> None:
    h = api.headers()
    assert _create(api, name="net-used", kind="isolated")["state"] == "succeeded"
    made = api.client.post(
        "/api/v1/vms",
        json={
            "name": "net-user",
            "cdrom_drive": True,
            "boot": {"source": "cdrom"},
            "nics": [{"network": "net-used"}],
        },
        headers=h,
    )
    assert made.status_code == 201, made.text
    try:
        refused = api.client.delete(f"{NETS}/net-used", headers=h)
        assert refused.status_code == 409 and "net-user" in refused.text
    finally:
        api.client.delete("/api/v1/vms/net-user", headers=h)
    _wait_task(api, api.client.delete(f"{NETS}/net-used", headers=h))


def test_check_marks_a_network_changed_by_hand_as_drifted(api: Api) -> None:
    assert _create(api, name="net-drift", kind="isolated")["state"] == "succeeded"
    conn = libvirt.open("test:///default")
    try:
        conn.networkLookupByName("net-drift").destroy()
    finally:
        conn.close()
    checked = api.client.post("/api/v1/network-checks", headers=api.headers())
    assert checked.status_code == 200, checked.text
    [state] = _show(api, "net-drift")["hosts"]
    assert state["state"] == "drifted" and "not active" in state["reason"]
    again = _wait_task(api, api.client.post(f"{NETS}/net-drift/apply", headers=api.headers()))
    assert again["state"] == "succeeded" and again["result"]["hosts"] == {"test": "applied"}
    assert _show(api, "net-drift")["hosts"][0]["state"] == "applied"
    edited = _wait_task(api, api.client.patch(f"{NETS}/net-drift", json={"required": True},
                                              headers=api.headers()))  # fmt: skip
    assert edited["state"] == "succeeded", edited
    shown = _show(api, "net-drift")
    assert shown["required"] and shown["hosts"][0]["state"] == "applied"
    _wait_task(api, api.client.delete(f"{NETS}/net-drift", headers=api.headers()))


def test_a_host_lacking_a_required_network_takes_no_new_vm(api: Api) -> None:
    h = api.headers()
    # The test driver's host has no management address: the vxlan network fails there.
    assert _create(api, name="vx-req", kind="vxlan", vni=777, required=True)["state"] == "failed"
    spec = {"name": "req-vm", "cdrom_drive": True, "boot": {"source": "cdrom"}, "nics": []}
    try:
        pinned = api.client.post("/api/v1/vms", json={**spec, "host": "test"}, headers=h)
        assert pinned.status_code == 409, pinned.text
        assert "host test lacks the required network vx-req" in pinned.text
        placed = api.client.post("/api/v1/vms", json=spec, headers=h)
        assert placed.status_code == 409, placed.text
        assert "test lacks the required network vx-req" in placed.text
    finally:
        _wait_task(api, api.client.delete(f"{NETS}/vx-req", headers=h))
    made = api.client.post("/api/v1/vms", json=spec, headers=h)
    assert made.status_code == 201, made.text
    try:
        assert _create(api, name="vx-nic", kind="vxlan", vni=778)["state"] == "failed"
        plug = api.client.post("/api/v1/vms/req-vm/nics", json={"network": "vx-nic"}, headers=h)
        assert plug.status_code == 409, plug.text
        assert "host test lacks the network vx-nic" in plug.json()["detail"]
        _wait_task(api, api.client.delete(f"{NETS}/vx-nic", headers=h))
    finally:
        api.client.delete("/api/v1/vms/req-vm", headers=h)


def test_drift_is_found_without_asking(tmp_path: Path) -> None:
    with running_api(tmp_path, reconcile_interval_s=0.2) as quick:
        assert _create(quick, name="net-watched", kind="isolated")["state"] == "succeeded"
        conn = libvirt.open("test:///default")
        try:
            conn.networkLookupByName("net-watched").destroy()
        finally:
            conn.close()
        deadline = time.monotonic() + 20
        while _show(quick, "net-watched")["hosts"][0]["state"] != "drifted":
            assert time.monotonic() < deadline, _show(quick, "net-watched")
            time.sleep(0.1)
        _wait_task(quick, quick.client.delete(f"{NETS}/net-watched", headers=quick.headers()))


def test_a_host_that_connects_gets_the_networks(tmp_path: Path) -> None:
    # Held open throughout: the test driver's state lasts while a connection does.
    conn = libvirt.open("test:///default")
    try:
        with running_api(tmp_path) as first:
            assert _create(first, name="net-back", kind="isolated")["state"] == "succeeded"
        net = conn.networkLookupByName("net-back")
        net.destroy()
        net.undefine()
        # The next manager process connects to the host, which gets its networks at once.
        with running_api(tmp_path) as again:
            deadline = time.monotonic() + 20
            while "net-back" not in {n.name() for n in conn.listAllNetworks(0)}:
                assert time.monotonic() < deadline, _show(again, "net-back")
                time.sleep(0.1)
            assert _show(again, "net-back")["hosts"][0]["state"] == "applied"
            _wait_task(again, again.client.delete(f"{NETS}/net-back", headers=again.headers()))
    finally:
        conn.close()


class _LostHostAgent:
    """A host agent whose change cuts the host off: net.confirm never gets through."""

    def __init__(self) -> None:
        self.ops: list[str] = []

    async def __call__(
        self, host_name: str, op: str, args: dict[str, Any], *, timeout_s: float
    ) -> dict[str, Any]:
        self.ops.append(op)
        if op == "net.confirm":
            raise HostError(f"host agent on {host_name}: {op}: ssh: connection timed out")
        return {"bridges": []}


def test_a_change_that_cut_a_host_off_is_not_applied_again_on_reconnect(api: Api) -> None:
    h = api.headers()
    realiser = api.services.networks.realiser
    agent, saved = _LostHostAgent(), realiser.agent
    realiser.agent = agent
    assert api.client.put("/api/v1/hosts/test/nics/eth1/labels/cut", headers=h).status_code == 200
    try:
        task = _create(api, name="br-cut", kind="bridge", uplink="cut")
        assert task["state"] == "failed", task
        [state] = _show(api, "br-cut")["hosts"]
        assert state["state"] == "failed"
        assert "could not reach host test after the change" in state["reason"]
        assert "br-cut" not in _libvirt_networks()
        sent = agent.ops.count("net.apply")
        # The host reconnects: the same change is not made again (it rolled back by itself).
        host = api.services.hosts.get("test")
        api.client.portal.call(api.services.networks.on_host_connected, host)  # type: ignore[union-attr]
        assert agent.ops.count("net.apply") == sent
        # An administrator's apply tries again.
        again = _wait_task(api, api.client.post(f"{NETS}/br-cut/apply", headers=h))
        assert again["state"] == "failed" and agent.ops.count("net.apply") == sent + 1
    finally:
        realiser.agent = saved
        _wait_task(api, api.client.delete(f"{NETS}/br-cut", headers=h))
        api.client.delete("/api/v1/hosts/test/nics/eth1/labels/cut", headers=h)
