"""Editing VMs and changing their devices through the API, on libvirt's test driver (its
domains cannot hot-plug devices: live attach is exercised on real guests in
tests/integration/api/test_vm_changes.py)."""

from __future__ import annotations

from typing import Any

import libvirt
import pytest

from tests.unit.api.conftest import Api


def _create(api: Api, name: str, **extra: Any) -> dict[str, Any]:
    spec = {"name": name, "memory_mib": 64, "disks": [{"size_gib": 1}], **extra}
    answer = api.client.post("/api/v1/vms", json=spec, headers=api.headers())
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _patch(api: Api, name: str, body: dict[str, Any]) -> Any:
    return api.client.patch(f"/api/v1/vms/{name}", json=body, headers=api.headers())


def _definition(name: str) -> str:
    conn = libvirt.open("test:///default")
    try:
        return str(conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    finally:
        conn.close()


def test_a_shut_off_vm_is_edited_offline_and_audited(api: Api) -> None:
    _create(api, "ed1", description="old")
    answer = _patch(api, "ed1", {"vcpus": 2, "memory_mib": 128, "description": "new"})
    assert answer.status_code == 200, answer.text
    change = answer.json()
    assert change["applied"] == "offline"
    assert change["changes"] == [
        "vCPUs 1 → 2",
        "max vCPUs 1 → 2",
        "memory 64 MiB → 128 MiB",
        "max memory 64 MiB → 128 MiB",
        "description",
    ]
    vm = change["vm"]
    assert (vm["vcpus"], vm["max_vcpus"], vm["memory_mib"], vm["description"]) == (
        2, 2, 128, "new"
    )  # fmt: skip
    shown = api.client.get("/api/v1/vms/ed1", headers=api.headers()).json()
    assert shown["vcpus"] == 2 and shown["memory_mib"] == 128
    audit = api.client.get("/api/v1/audit", params={"action": "vm.edit"}, headers=api.headers())
    entry = audit.json()["items"][0]
    assert entry["target"] == "ed1" and entry["outcome"] == "ok"
    assert entry["detail"].startswith("offline: vCPUs 1 → 2")


def test_a_running_vm_changes_live_within_its_maximums(api: Api) -> None:
    _create(api, "ed2", vcpus=1, max_vcpus=4, memory_mib=64, max_memory_mib=256, start=True)
    answer = _patch(api, "ed2", {"vcpus": 3})
    assert answer.status_code == 200, answer.text
    assert answer.json()["applied"] == "live"
    assert answer.json()["vm"]["vcpus"] == 3
    # Above the maximum: not live. Asked for live, refused; by default, at the next start.
    refused = _patch(api, "ed2", {"vcpus": 6, "mode": "live"})
    assert refused.status_code == 409
    assert "maximums change only when the VM starts" in refused.json()["detail"]
    later = _patch(api, "ed2", {"vcpus": 6})
    assert later.status_code == 200, later.text
    assert later.json()["applied"] == "next_start"
    vm = later.json()["vm"]
    assert vm["vcpus"] == 3
    assert vm["next_start"]["vcpus"] == 6 and vm["next_start"]["max_vcpus"] == 6
    api.client.post("/api/v1/vms/ed2/stop", headers=api.headers())


def test_a_second_edit_keeps_the_first_ones_pending_changes(api: Api) -> None:
    # Seen: `--max-vcpus 4 --next-start`, then `--memory 600M` answered "max vCPUs 4 → 2".
    _create(api, "ed5", vcpus=1, max_vcpus=2, memory_mib=64, max_memory_mib=256, start=True)
    try:
        first = _patch(api, "ed5", {"max_vcpus": 4, "mode": "next_start"})
        assert first.status_code == 200, first.text
        assert first.json()["vm"]["next_start"]["max_vcpus"] == 4
        second = _patch(api, "ed5", {"memory_mib": 512})
        assert second.status_code == 200, second.text
        assert second.json()["applied"] == "next_start"
        assert second.json()["changes"] == [
            "memory 64 MiB → 512 MiB",
            "max memory 256 MiB → 512 MiB",
        ]
        pending = second.json()["vm"]["next_start"]
        assert (pending["max_vcpus"], pending["memory_mib"]) == (4, 512), pending
        # A pending topology is shown, and a later live change leaves it pending.
        topology = {"sockets": 1, "cores": 4, "threads": 1}
        third = _patch(api, "ed5", {"topology": topology, "mode": "next_start"})
        assert third.status_code == 200, third.text
        assert third.json()["vm"]["next_start"]["topology"] == topology
        fourth = _patch(api, "ed5", {"vcpus": 2})
        assert fourth.status_code == 200, fourth.text
        assert fourth.json()["applied"] == "live"
        pending = fourth.json()["vm"]["next_start"]
        assert pending["topology"] == topology and pending["max_vcpus"] == 4, pending
        assert "cores='4'" in _definition("ed5")
    finally:
        api.client.post("/api/v1/vms/ed5/stop", headers=api.headers())


def test_a_shut_off_vm_cannot_change_live(api: Api) -> None:
    _create(api, "ed3")
    answer = _patch(api, "ed3", {"vcpus": 2, "mode": "live"})
    assert answer.status_code == 409
    assert "shut off" in answer.json()["detail"]


BAD_EDITS: list[tuple[str, dict[str, Any], int, str]] = [
    ("vcpus above max in the body", {"vcpus": 4, "max_vcpus": 2}, 422, "max_vcpus"),
    ("memory above max in the body", {"memory_mib": 512, "max_memory_mib": 256}, 422,
     "max_memory_mib"),
    ("max below the vm's vcpus", {"max_vcpus": 1}, 409, "lower vcpus too"),
    ("topology not fitting", {"topology": {"sockets": 2, "cores": 2, "threads": 1}}, 409,
     "give a topology"),
    ("topology against max in the body", {"max_vcpus": 4, "topology": {"sockets": 1, "cores": 2,
                                                                       "threads": 1}}, 422, "4"),
    ("vcpus above the host", {"vcpus": 500}, 409, "at most"),
    ("memory above the host", {"memory_mib": 4 * 1024 * 1024}, 409, "MiB of memory"),
    ("unknown field", {"colour": "red"}, 422, "unknown field"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "words"), [b[1:] for b in BAD_EDITS], ids=[b[0] for b in BAD_EDITS]
)
def test_bad_edits_leave_the_vm_as_it_was(
    api: Api, body: dict[str, Any], status: int, words: str
) -> None:
    name = "ed-bad"
    if api.client.get(f"/api/v1/vms/{name}", headers=api.headers()).status_code == 404:
        _create(api, name, vcpus=2)
    before = _definition(name)
    answer = _patch(api, name, body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert words in answer.json()["detail"], answer.json()["detail"]
    assert _definition(name) == before


def test_disks_and_nics_change_offline(api: Api) -> None:
    _create(api, "dev1", nics=[])
    headers = api.headers()
    added = api.client.post(
        "/api/v1/vms/dev1/disks", json={"name": "data", "size_gib": 1}, headers=headers
    )
    assert added.status_code == 200, added.text
    assert added.json()["applied"] == "offline"
    disks = {d["name"]: d for d in added.json()["vm"]["disks"]}
    assert disks["data"]["target"] == "vdb" and disks["data"]["bus"] == "virtio"
    dup = api.client.post(
        "/api/v1/vms/dev1/disks", json={"name": "data", "size_gib": 1}, headers=headers
    )
    assert dup.status_code == 409 and "already" in dup.json()["detail"]
    nic = api.client.post("/api/v1/vms/dev1/nics", json={"network": "user"}, headers=headers)
    assert nic.status_code == 200, nic.text
    (mac,) = [n["mac"] for n in nic.json()["vm"]["nics"]]
    gone = api.client.delete(f"/api/v1/vms/dev1/nics/{mac}", headers=headers)
    assert gone.status_code == 200, gone.text
    assert gone.json()["vm"]["nics"] == []
    detached = api.client.delete(
        "/api/v1/vms/dev1/disks/data", params={"delete_volume": "true"}, headers=headers
    )
    assert detached.status_code == 200, detached.text
    assert "deleted" in detached.json()["changes"][0]
    assert [d["name"] for d in detached.json()["vm"]["disks"]] == ["root"]


def test_a_volume_used_by_another_vm_is_not_attached(api: Api) -> None:
    owner = _create(api, "own1")
    _create(api, "thief1")
    volume = owner["disks"][0]["path"].rsplit("/", 1)[1]
    answer = api.client.post(
        "/api/v1/vms/thief1/disks",
        json={"name": "stolen", "volume": volume},
        headers=api.headers(),
    )
    assert answer.status_code == 409, answer.text
    assert "in use by VM own1" in answer.json()["detail"]
    missing = api.client.post(
        "/api/v1/vms/thief1/disks",
        json={"name": "x", "volume": "nope.qcow2"},
        headers=api.headers(),
    )
    assert missing.status_code == 404


def test_unknown_disks_and_nics_are_404(api: Api) -> None:
    _create(api, "dev2")
    headers = api.headers()
    assert api.client.delete("/api/v1/vms/dev2/disks/nope", headers=headers).status_code == 404
    answer = api.client.delete("/api/v1/vms/dev2/nics/52:54:00:00:00:01", headers=headers)
    assert answer.status_code == 404


def test_host_show_lists_what_it_can_run(api: Api) -> None:
    host = api.client.get("/api/v1/hosts/test", headers=api.headers()).json()
    caps = host["capabilities"]
    assert caps["architectures"] == ["i686"]
    (guest,) = caps["guests"]
    assert guest["arch"] == "i686" and guest["max_vcpus"] == 32
    listed = api.client.get("/api/v1/hosts", headers=api.headers()).json()["items"]
    assert listed[0]["capabilities"]["guests"] is None
