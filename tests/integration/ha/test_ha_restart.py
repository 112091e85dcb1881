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

import time
from pathlib import Path

import httpx
import pytest

from corral.testbed.bmc import BmcSimulator, power_off, power_on
from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.multihost import MultiHostTestbed
from tests.integration.ha._support import (
    TwiceWatcher,
    bmc_power,
    defined_on,
    delete,
    ha_vm,
    heartbeat,
    host_ha,
    running_on,
    until_connected,
)

pytestmark = pytest.mark.integration

#: What the issue asks: HA VMs run elsewhere within 60 s of the power cut.
RESTART_WITHIN_S = 60


def test_a_power_cut_through_the_bmc_restarts_the_ha_vm_elsewhere_within_a_minute(
    multihost_corral: CorralServer,
    api: httpx.Client,
    testbed: MultiHostTestbed,
    cluster: Path,
    bmc: BmcSimulator,
    kernel_guest: KernelGuest,
) -> None:
    ha_vm(api, "ha-one", "h2", kernel_guest, priority=80, booted=True)
    shown = multihost_corral.cli("vm", "ha", "ha-one")
    assert "HA on, priority 80" in shown.stdout, shown.stdout + shown.stderr
    try:
        assert heartbeat(api, "ha-one") > 1

        def restarted() -> str | None:
            vm = api.get("/vms/ha-one").json()
            up = vm["host"] != "h2" and vm["state"] == "running"
            return str(vm["host"]) if up else None

        with TwiceWatcher(testbed, {"ha-one"}) as watcher:
            # The power cut: through the BMC, as any IPMI client would.
            cut = time.monotonic()
            bmc_power(bmc, on=False)
            assert running_on(testbed, "ha-one") == []
            where = wait_until(restarted, RESTART_WITHIN_S, "ha-one running elsewhere",
                               interval=0.5)  # fmt: skip
            took = time.monotonic() - cut
        assert watcher.looks > 3 and watcher.most["ha-one"] == 1, (watcher.looks, watcher.most)
        print(f"ha-one restarted on {where} {took:.1f} s after the power cut")
        assert where in ("h1", "h3")
        assert running_on(testbed, "ha-one") == [where]  # once, and there
        h2 = host_ha(api, "h2")
        assert h2["state"] == "fenced", h2
        assert "BMC" in h2["reason"] or "run elsewhere" in h2["reason"], h2
        assert "off" in bmc.switched()  # Corral's own fencing call reached the BMC
        # Its serial log starts anew with the new QEMU: beats counted there are new ones.
        first = heartbeat(api, "ha-one")
        wait_until(lambda: heartbeat(api, "ha-one") > first, 90, "the heartbeat resumes",
                   interval=0.5)  # fmt: skip
        actions = {(e["action"], e["target"], e["outcome"])
                   for e in api.get("/audit", params={"limit": 50}).json()["items"]}  # fmt: skip
        assert ("host.fence", "h2", "ok") in actions
        assert ("vm.ha_restart", "ha-one", "ok") in actions

        # h2 comes back: it starts nothing, and forgets the definition it had.
        bmc_power(bmc, on=True)
        until_connected(api, "h2")
        wait_until(lambda: host_ha(api, "h2")["state"] == "ok", 30, "h2 ok again")
        assert "ha-one" not in defined_on(testbed, "h2")
        assert running_on(testbed, "ha-one") == [where]
        status = multihost_corral.cli("ha", "status")
        assert status.returncode == 0 and "h2" in status.stdout, status.stderr
    finally:
        delete(api, "ha-one")


def test_without_proof_nothing_restarts_until_an_administrator_confirms_the_host_down(
    multihost_corral: CorralServer,
    api: httpx.Client,
    testbed: MultiHostTestbed,
    cluster: Path,
    kernel_guest: KernelGuest,
) -> None:
    refused = multihost_corral.cli("host", "confirm-down", "h3")
    assert refused.returncode != 0 and "it is not down" in refused.stderr, refused.stderr
    ha_vm(api, "ha-two", "h3", kernel_guest, priority=10)
    h3 = testbed.host("h3")
    try:
        power_off(testbed, h3)  # no BMC: what losing power does to it, nothing else
        wait_until(lambda: host_ha(api, "h3")["state"] == "fencing", 30, "h3 fencing")
        reason = host_ha(api, "h3")["reason"]
        assert "no power driver" in reason and "corral host confirm-down h3" in reason, reason
        # No proof, no restart: for several monitor passes it stays where it was, running
        # nowhere.
        until = time.monotonic() + 4
        while time.monotonic() < until:
            assert api.get("/vms/ha-two").json()["host"] == "h3"
            assert running_on(testbed, "ha-two") == []

        confirmed = multihost_corral.cli("host", "confirm-down", "h3")
        assert confirmed.returncode == 0, confirmed.stderr
        wait_until(
            lambda: api.get("/vms/ha-two").json()["state"] == "running", 60, "ha-two restarted"
        )
        assert api.get("/vms/ha-two").json()["host"] in ("h1", "h2")
        audit = api.get("/audit", params={"action": "host.confirm_down"}).json()["items"]
        assert [e["target"] for e in audit][:1] == ["h3"]

        power_on(testbed, h3)
        until_connected(api, "h3")
        wait_until(lambda: host_ha(api, "h3")["state"] == "ok", 30, "h3 ok again")
        assert "ha-two" not in defined_on(testbed, "h3")
    finally:
        power_on(testbed, h3)
        delete(api, "ha-two")
