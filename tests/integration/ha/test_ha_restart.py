"""High availability on the test bed: HA VMs with their disk on a shared-dir domain come back on
another host when theirs dies, and never run twice.

* h2 loses power through its BMC (``ipmi_sim``, cut through IPMI-over-LAN as any client
  would): Corral notices libvirt's silence, switches h2 off through the BMC, sees the BMC
  report it off, and restarts its HA VM elsewhere; its heartbeat resumes there. When h2 is
  powered on again it starts nothing: the stale definition there is forgotten.
* h3 has no power driver: when it dies nothing restarts (no proof it is off) until an
  administrator runs ``corral host confirm-down h3``.

The local host is kept in maintenance meanwhile so that the restarts land on h1/h3 (or h1/h2)
as on a cluster of three.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.services.power.drivers.ipmi import IpmiPower
from corral.testbed.bmc import BmcSimulator, free_udp_port, power_off, power_on
from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.multihost import MultiHostTestbed
from corral.testbed.vm_specs import kernel_vm

pytestmark = pytest.mark.integration

DOMAIN = "ha-shared"
BMC_USER = "corral"
BMC_PASSWORD = "Ha-bmc-s3cret"
HEARTBEAT = re.compile(rb"corral-heartbeat (\d+)")
#: What the issue asks: HA VMs run elsewhere within 60 s of the power cut.
RESTART_WITHIN_S = 60


@pytest.fixture(scope="module")
def api(multihost_corral: CorralServer) -> Iterator[httpx.Client]:
    with multihost_corral.client() as client:
        yield client


@pytest.fixture(scope="module")
def cluster(
    api: httpx.Client, testbed: MultiHostTestbed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The shared domain, every host reaching it; the local host in maintenance."""
    path = tmp_path_factory.mktemp("ha-shared")
    made = api.post("/storage-domains", json={"kind": "shared-dir", "name": DOMAIN,
                                             "path": str(path)})  # fmt: skip
    assert made.status_code == 201, made.text
    assert api.put("/hosts/local/maintenance", json={"enabled": True}).status_code == 200
    try:
        yield path
    finally:
        api.put("/hosts/local/maintenance", json={"enabled": False})
        for name in ("h2", "h3"):
            host = testbed.host(name)
            power_on(testbed, host)
            api.put(f"/hosts/{name}/power", json={"driver": None})
        api.delete(f"/storage-domains/{DOMAIN}")


@pytest.fixture(scope="module")
def bmc(
    testbed: MultiHostTestbed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BmcSimulator]:
    sim = BmcSimulator(
        testbed,
        "h2",
        tmp_path_factory.mktemp("bmc-ha-h2"),
        address="127.0.0.1",
        port=free_udp_port(),
        user=BMC_USER,
        password=BMC_PASSWORD,
    )
    with sim:
        yield sim


def _heartbeat(api: httpx.Client, name: str) -> int:
    answer = api.get(f"/vms/{name}/log", params={"tail_bytes": 2048})
    found = HEARTBEAT.findall(answer.content) if answer.status_code == 200 else []
    return int(found[-1]) if found else 0


def _ha_vm(api: httpx.Client, name: str, host: str, guest: KernelGuest, priority: int) -> None:
    spec = kernel_vm(name, guest, disk_gib=None, host=host)
    spec["disks"] = [{"name": "data", "size_gib": 0.25, "domain": DOMAIN}]
    made = api.post("/vms", json=spec)
    assert made.status_code == 201, made.text
    assert api.post(f"/vms/{name}/start").status_code == 200
    answer = api.put(f"/vms/{name}/ha", json={"enabled": True, "priority": priority})
    assert answer.status_code == 200, answer.text
    assert answer.json()["definition_saved_at"] is not None
    wait_until(lambda: _heartbeat(api, name) > 1, 90, f"{name}'s heartbeat", interval=0.3)


def _delete(api: httpx.Client, name: str) -> None:
    api.post(f"/vms/{name}/stop")
    wait_until(
        lambda: api.delete(f"/vms/{name}", params={"delete_disks": True}).status_code == 404,
        60,
        f"{name} deleted",
        interval=1,
    )


def _host_ha(api: httpx.Client, name: str) -> dict[str, Any]:
    [found] = [h for h in api.get("/ha").json()["hosts"] if h["host"] == name]
    return found  # type: ignore[no-any-return]


def _running_on(testbed: MultiHostTestbed, name: str) -> list[str]:
    """The test-bed hosts where libvirt runs domain ``name`` (asked directly, not Corral)."""
    found = []
    for host in ("h1", "h2", "h3"):
        listed = subprocess.run(["virsh", "-c", testbed.host(host).unix_uri, "list", "--name"],
                                capture_output=True, text=True, timeout=30)  # fmt: skip
        if listed.returncode == 0 and name in listed.stdout.split():
            found.append(host)
    return found


def _defined_on(testbed: MultiHostTestbed, host: str) -> list[str]:
    listed = subprocess.run(
        ["virsh", "-c", testbed.host(host).unix_uri, "list", "--all", "--name"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return listed.stdout.split()


def _until_connected(api: httpx.Client, name: str) -> None:
    wait_until(lambda: api.get(f"/hosts/{name}").json().get("connected"), 60,
               f"{name} connected again", interval=0.5)  # fmt: skip


def test_a_power_cut_through_the_bmc_restarts_the_ha_vm_elsewhere_within_a_minute(
    multihost_corral: CorralServer,
    api: httpx.Client,
    testbed: MultiHostTestbed,
    cluster: Path,
    bmc: BmcSimulator,
    kernel_guest: KernelGuest,
    tmp_path: Path,
) -> None:
    password = tmp_path / "bmc-password"
    password.write_text(BMC_PASSWORD + "\n")
    done = multihost_corral.cli(
        "host", "power", "h2", "--driver", "ipmi", "--address", bmc.address,
        "--port", str(bmc.port), "--user", BMC_USER, "--password-file", str(password),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    _ha_vm(api, "ha-one", "h2", kernel_guest, priority=80)
    shown = multihost_corral.cli("vm", "ha", "ha-one")
    assert "HA on, priority 80" in shown.stdout, shown.stdout + shown.stderr
    try:
        before = _heartbeat(api, "ha-one")
        # The power cut: through the BMC, as any IPMI client would.
        cut = time.monotonic()
        asyncio.run(IpmiPower("h2", bmc.address, bmc.port, BMC_USER, BMC_PASSWORD).power_off())
        assert _running_on(testbed, "ha-one") == []

        def restarted() -> str | None:
            vm = api.get("/vms/ha-one").json()
            up = vm["host"] != "h2" and vm["state"] == "running"
            return str(vm["host"]) if up else None

        where = wait_until(restarted, RESTART_WITHIN_S, "ha-one running elsewhere", interval=0.5)
        took = time.monotonic() - cut
        print(f"ha-one restarted on {where} {took:.1f} s after the power cut")
        assert where in ("h1", "h3")
        assert _running_on(testbed, "ha-one") == [where]  # once, and there
        h2 = _host_ha(api, "h2")
        assert h2["state"] == "fenced", h2
        assert "BMC" in h2["reason"] or "run elsewhere" in h2["reason"], h2
        assert "off" in bmc.switched()  # Corral's own fencing call reached the BMC
        wait_until(lambda: _heartbeat(api, "ha-one") > 1, 90, "the heartbeat resumes",
                   interval=0.5)  # fmt: skip
        assert before > 1
        actions = {(e["action"], e["target"], e["outcome"])
                   for e in api.get("/audit", params={"limit": 50}).json()["items"]}  # fmt: skip
        assert ("host.fence", "h2", "ok") in actions
        assert ("vm.ha_restart", "ha-one", "ok") in actions

        # h2 comes back: it starts nothing, and forgets the definition it had.
        asyncio.run(IpmiPower("h2", bmc.address, bmc.port, BMC_USER, BMC_PASSWORD).power_on())
        _until_connected(api, "h2")
        wait_until(lambda: _host_ha(api, "h2")["state"] == "ok", 30, "h2 ok again")
        assert "ha-one" not in _defined_on(testbed, "h2")
        assert _running_on(testbed, "ha-one") == [where]
        status = multihost_corral.cli("ha", "status")
        assert status.returncode == 0 and "h2" in status.stdout, status.stderr
    finally:
        _delete(api, "ha-one")


def test_without_proof_nothing_restarts_until_an_administrator_confirms_the_host_down(
    multihost_corral: CorralServer,
    api: httpx.Client,
    testbed: MultiHostTestbed,
    cluster: Path,
    kernel_guest: KernelGuest,
) -> None:
    refused = multihost_corral.cli("host", "confirm-down", "h3")
    assert refused.returncode != 0 and "it is not down" in refused.stderr, refused.stderr
    _ha_vm(api, "ha-two", "h3", kernel_guest, priority=10)
    h3 = testbed.host("h3")
    try:
        power_off(testbed, h3)  # no BMC: what losing power does to it, nothing else
        wait_until(lambda: _host_ha(api, "h3")["state"] == "fencing", 30, "h3 fencing")
        reason = _host_ha(api, "h3")["reason"]
        assert "no power driver" in reason and "corral host confirm-down h3" in reason, reason
        # No proof, no restart: for several monitor passes it stays where it was, running
        # nowhere.
        until = time.monotonic() + 4
        while time.monotonic() < until:
            assert api.get("/vms/ha-two").json()["host"] == "h3"
            assert _running_on(testbed, "ha-two") == []

        confirmed = multihost_corral.cli("host", "confirm-down", "h3")
        assert confirmed.returncode == 0, confirmed.stderr
        wait_until(
            lambda: api.get("/vms/ha-two").json()["state"] == "running", 60, "ha-two restarted"
        )
        assert api.get("/vms/ha-two").json()["host"] in ("h1", "h2")
        audit = api.get("/audit", params={"action": "host.confirm_down"}).json()["items"]
        assert [e["target"] for e in audit][:1] == ["h3"]

        power_on(testbed, h3)
        _until_connected(api, "h3")
        wait_until(lambda: _host_ha(api, "h3")["state"] == "ok", 30, "h3 ok again")
        assert "ha-two" not in _defined_on(testbed, "h3")
    finally:
        power_on(testbed, h3)
        _delete(api, "ha-two")
