"""Power-aware placement on the three-host test bed, end to end, with real parts only: real
libvirtd hosts, real QEMU guests under TCG, live migration, and a real BMC simulator
(OpenIPMI's ``ipmi_sim``) whose chassis power commands stop and start test-bed host h3.

Only h3 has a BMC, so only h3 can be put in standby (h1 and h2 are "never emptied": the plan's
notes say so). The thresholds are lowered from oVirt's defaults (high 75 %, low 20 %, 2
minutes) to what two cores shared by four TCG guests can show in a short test: the guests'
CPU burners give each host well above 30 % and idle guests stay far below 10 %.

1. Four small guests on h1 (2), h2 and h3; policy ``power_saving``, mode ``manual``: the plan
   moves h3's guest away and puts h3 in standby; ``corral power apply --plan ID`` does it and
   the BMC really switches h3 off (its libvirtd is gone).
2. Mode ``auto``; a CPU burner in every guest pushes h1 and h2 above "high": Corral by itself
   switches h3 on through the BMC and moves guests onto it.

Every guest's heartbeat goes on throughout (the serial logs on every host the guest visited:
one boot, no number missing).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.testbed.bmc import BmcSimulator, free_udp_port
from corral.testbed.bmc import power_on as switch_on
from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import BOOT_MARKER, KernelGuest
from corral.testbed.multihost import MultiHostTestbed
from tests.integration.api._support import SerialShell, kernel_vm, wait_task

pytestmark = pytest.mark.integration

HEARTBEAT = re.compile(rb"corral-heartbeat (\d+)")
GUESTS = {"pw-a": "h1", "pw-b": "h1", "pw-c": "h2", "pw-d": "h3"}
BED_HOSTS = ("h1", "h2", "h3")
BMC_USER = "corral"
BMC_PASSWORD = "Bmc-s3cret-pw"
SETTINGS = {
    "placement_policy": "power_saving",
    "power_policy": "manual",
    "high_utilisation": 0.3,
    "low_utilisation": 0.1,
    "sustained_minutes": 0.25,
    "hosts_in_reserve": 0,
}
BURN = "sh -c 'while :; do :; done' >/dev/null 2>&1 & echo $! >/tmp/burner.pid"


@pytest.fixture(scope="module")
def api(multihost_corral: CorralServer) -> Iterator[httpx.Client]:
    with multihost_corral.client() as client:
        yield client


@pytest.fixture(scope="module")
def bmc(
    testbed: MultiHostTestbed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BmcSimulator]:
    sim = BmcSimulator(
        testbed,
        "h3",
        tmp_path_factory.mktemp("bmc-h3"),
        address="127.0.0.1",
        port=free_udp_port(),
        user=BMC_USER,
        password=BMC_PASSWORD,
    )
    with sim:
        yield sim


def host_info(api: httpx.Client, name: str) -> dict[str, Any]:
    answer = api.get(f"/hosts/{name}")
    assert answer.status_code == 200, answer.text
    info: dict[str, Any] = answer.json()
    return info


def vm_host(api: httpx.Client, name: str) -> str:
    vm = api.get(f"/vms/{name}").json()
    assert vm["state"] == "running", vm
    host: str = vm["host"]
    return host


def last_heartbeat(api: httpx.Client, name: str) -> int:
    answer = api.get(f"/vms/{name}/log", params={"tail_bytes": 2048})
    found = HEARTBEAT.findall(answer.content) if answer.status_code == 200 else []
    return int(found[-1]) if found else 0


def serial_logs(testbed: MultiHostTestbed, name: str) -> list[bytes]:
    """The guest's serial log on every test-bed host (virtlogd's files: the harness's look)."""
    files = [
        testbed.host(h).base / "lib" / "corral" / "images" / f"{name}.serial.log" for h in BED_HOSTS
    ]
    return [f.read_bytes() for f in files if f.exists()]


def assert_heartbeat_unbroken(testbed: MultiHostTestbed, name: str, since: int) -> None:
    """The guest never stopped or restarted on its travels. A move deletes the source's log
    (`vm log` shows what the VM printed since it arrived), so what is left is one log: a guest
    that never moved has its boot and every heartbeat from 1; a moved one has no boot in it and
    carries its heartbeat on, without a gap, from at or past the count it had before the
    policy ran (a restarted guest would boot again and count from 1)."""
    logs = serial_logs(testbed, name)
    assert len(logs) == 1, (name, len(logs))
    beats = {int(n) for n in HEARTBEAT.findall(logs[0])}
    first, newest = min(beats), max(beats)
    assert newest > since, (name, since, newest)
    if BOOT_MARKER in logs[0]:
        assert (logs[0].count(BOOT_MARKER), first) == (1, 1), name
    else:
        assert first >= since, (name, since, first)
    missing = sorted(set(range(first, newest + 1)) - beats)
    assert missing == [], (name, missing)


def settings(api: httpx.Client, **changes: Any) -> None:
    answer = api.patch("/cluster/settings", json=changes)
    assert answer.status_code == 200, answer.text


def power_tasks(api: httpx.Client) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = api.get("/tasks", params={"limit": 200}).json()["items"]
    return [t for t in tasks if t["kind"] == "power.apply"]


@pytest.fixture(scope="module")
def guests(
    api: httpx.Client,
    multihost_corral: CorralServer,
    testbed: MultiHostTestbed,
    bmc: BmcSimulator,
    kernel_guest: KernelGuest,
) -> Iterator[dict[str, str]]:
    """The four guests booted where ``GUESTS`` says, h3 powered by ``bmc``; afterwards the
    test bed is as it was (manual mode, h3 on and without a driver, no guests)."""
    settings(api, **SETTINGS)
    try:
        for name, host in GUESTS.items():
            spec = kernel_vm(name, kernel_guest, disk_gib=None, host=host)
            answer = api.post("/vms", json=spec)
            assert answer.status_code == 201, answer.text
            assert api.post(f"/vms/{name}/start").status_code == 200
        for name in GUESTS:
            wait_until(lambda n=name: last_heartbeat(api, n) > 1, 120, f"{name}'s heartbeat")  # type: ignore[misc]
        yield dict(GUESTS)
    finally:
        settings(api, power_policy="manual")
        wait_until(lambda: api.get("/power/status").json()["running_task"] is None, 300, "idle")
        if host_info(api, "h3")["standby"]:
            answer = api.post("/hosts/h3/power-on")
            assert answer.status_code == 202, answer.text
            wait_task(api, answer.json()["id"], 120)
        if not testbed.daemon_alive(testbed.host("h3"), "libvirtd"):  # for the next tests
            switch_on(testbed, testbed.host("h3"))
        api.put("/hosts/h3/power", json={"driver": None})
        for name in GUESTS:
            api.post(f"/vms/{name}/stop")
            api.delete(f"/vms/{name}")
        api.patch("/cluster/settings", json={"high_utilisation": 0.75, "low_utilisation": 0.2})
        api.patch("/cluster/settings", json={"sustained_minutes": 2})


def test_power_saving_empties_h3_through_ipmi_then_wakes_it_under_load(
    api: httpx.Client,
    multihost_corral: CorralServer,
    testbed: MultiHostTestbed,
    bmc: BmcSimulator,
    guests: dict[str, str],
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    beats_at_start = {name: last_heartbeat(api, name) for name in guests}

    # h3's BMC, configured through the real CLI; its password is sealed and never shown.
    password = tmp_path / "bmc-password"
    password.write_text(BMC_PASSWORD + "\n")
    done = multihost_corral.cli(
        "host", "power", "h3", "--driver", "ipmi", "--address", bmc.address,
        "--port", str(bmc.port), "--user", BMC_USER, "--password-file", str(password),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = api.get("/hosts/h3/power").json()
    assert shown["driver"] == "ipmi" and shown["password_set"] is True, shown
    assert shown["can_power_on"] and shown["can_power_off"], shown
    assert BMC_PASSWORD not in done.stdout + str(shown)

    # 1. The plan a person reviews: h3's guest to h1 or h2, h3 in standby, fewer watts.
    def consolidation() -> dict[str, Any] | None:
        found: dict[str, Any] = api.get("/power/plan").json()
        return found if found["plan"]["standby"] else None

    reviewed = wait_until(consolidation, 120, "a consolidation plan", interval=1)
    plan = reviewed["plan"]
    assert plan["standby"] == ["h3"] and plan["wake"] == [], plan
    assert [(m["vm"], m["source"]) for m in plan["migrations"]] == [("pw-d", "h3")], plan
    assert plan["migrations"][0]["target"] in ("h1", "h2"), plan
    assert plan["watts_after"] < plan["watts_before"], plan
    assert any("h1 is never emptied" in note for note in reviewed["notes"]), reviewed["notes"]

    done = multihost_corral.cli("power", "apply", "--plan", reviewed["id"], timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "applied: woke no host, 1 migration(s), standby h3" in done.stdout, done.stdout
    assert host_info(api, "h3")["standby"] is True
    assert set(bmc.switched()) == {"off"}  # through the BMC's chassis control
    assert not testbed.daemon_alive(testbed.host("h3"), "libvirtd")
    assert vm_host(api, "pw-d") == plan["migrations"][0]["target"]
    status = api.get("/power/status").json()
    h3 = next(h for h in status["hosts"] if h["name"] == "h3")
    assert h3["standby"] is True and h3["watts"] == pytest.approx(10.0), h3
    consolidated_at = time.monotonic()

    # 2. Auto mode, and load: every guest burns a CPU. Corral wakes h3 through the BMC and
    # moves guests onto it, by itself.
    applied_before = {t["id"] for t in power_tasks(api)}
    settings(api, power_policy="auto")
    for name in guests:
        SerialShell(multihost_corral, name).run(BURN)

    def relief() -> dict[str, Any] | None:
        for task in power_tasks(api):
            if task["id"] in applied_before or task["state"] == "running":
                continue
            if task["state"] == "succeeded" and task["result"]["woken"] == ["h3"]:
                return task
            pytest.fail(f"the policy's power task {task['id']} ended {task['state']}: {task}")
        return None

    task = wait_until(relief, 240, "Corral waking h3 under load", interval=1)
    woken_at = time.monotonic()
    assert task["created_by"] == "corral-power-policy"
    result = task["result"]
    assert result["migrations"], result
    assert all(m["target"] == "h3" for m in result["migrations"]), result
    assert bmc.switched()[-1] == "on"
    assert host_info(api, "h3")["standby"] is False
    assert host_info(api, "h3")["status"] == "connected"
    on_h3 = [name for name in guests if vm_host(api, name) == "h3"]
    assert on_h3, {name: vm_host(api, name) for name in guests}
    settings(api, power_policy="manual")
    wait_until(lambda: api.get("/power/status").json()["running_task"] is None, 300, "idle")
    for name in guests:
        SerialShell(multihost_corral, name).run("kill $(cat /tmp/burner.pid)")

    # Every guest's heartbeat went on throughout, wherever it ran.
    for name in guests:
        assert_heartbeat_unbroken(testbed, name, beats_at_start[name])
    # The audit log names who did what.
    audit = api.get("/audit", params={"limit": 200}).json()["items"]
    actions = {(e["action"], e["target"], e["user"]) for e in audit}
    assert ("host.power_off", "h3", "admin") in actions, actions
    assert ("host.power_on", "h3", "corral-power-policy") in actions, actions
    print(
        f"consolidated in {consolidated_at - started:.0f} s, "
        f"woken and spread {woken_at - consolidated_at:.0f} s later"
    )
