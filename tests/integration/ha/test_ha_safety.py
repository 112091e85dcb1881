"""HA never runs a VM twice, on the test bed:

* The link between Corral and h2 is cut while h2 runs on (iptables in h2's namespace drops
  Corral's libvirt connection; h2's QEMU and its disk are untouched): Corral cannot tell that
  from a dead host, so it fences h2 through its BMC first; only then does the VM start on
  another host.
* Corral is killed (SIGKILL) in the middle of a recovery: the next Corral resumes it from the
  states stored in the database, and h2 returning starts none of the old VMs.

A watcher lists every host's running domains through their own sockets about three times a
second throughout: the VM is never seen on two hosts.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from corral.testbed.bmc import BmcSimulator, power_on
from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.multihost import MultiHostTestbed
from tests.integration.ha._support import (
    TwiceWatcher,
    bmc_power,
    cut_from_corral,
    defined_on,
    delete,
    ha_vm,
    host_ha,
    running_on,
    until_connected,
)

pytestmark = pytest.mark.integration


def _vm(api: httpx.Client, name: str) -> dict[str, object]:
    answer = api.get(f"/vms/{name}")
    return answer.json() if answer.status_code == 200 else {}  # type: ignore[no-any-return]


def test_a_cut_link_is_fenced_through_the_bmc_before_anything_restarts(
    api: httpx.Client,
    testbed: MultiHostTestbed,
    cluster: Path,
    bmc: BmcSimulator,
    kernel_guest: KernelGuest,
) -> None:
    ha_vm(api, "ha-cut", "h2", kernel_guest, priority=60)
    h2 = testbed.host("h2")
    switched = len(bmc.switched())
    try:
        with TwiceWatcher(testbed, {"ha-cut"}) as watcher, cut_from_corral(h2):
            # h2 runs on and still reaches its storage: only Corral lost it.
            wait_until(lambda: host_ha(api, "h2")["state"] != "ok", 60, "h2 suspect")
            wait_until(lambda: _vm(api, "ha-cut").get("host") not in (None, "h2"), 90,
                       "ha-cut restarted elsewhere", interval=0.5)  # fmt: skip
        assert watcher.most["ha-cut"] == 1, watcher.most
        assert "off" in bmc.switched()[switched:]  # fenced through its BMC first
        assert running_on(testbed, "ha-cut") == [_vm(api, "ha-cut")["host"]]
        bmc_power(bmc, on=True)
        until_connected(api, "h2")
        wait_until(lambda: host_ha(api, "h2")["state"] == "ok", 30, "h2 ok again")
        assert "ha-cut" not in defined_on(testbed, "h2")
    finally:
        power_on(testbed, h2)
        delete(api, "ha-cut")


def test_corral_killed_during_a_recovery_resumes_it_after_its_restart(
    multihost_corral: CorralServer,
    api: httpx.Client,
    testbed: MultiHostTestbed,
    cluster: Path,
    bmc: BmcSimulator,
    kernel_guest: KernelGuest,
) -> None:
    ha_vm(api, "ha-kill", "h2", kernel_guest, priority=40)
    h2 = testbed.host("h2")
    try:
        with TwiceWatcher(testbed, {"ha-kill"}) as watcher:
            bmc_power(bmc, on=False)
            # Killed as soon as the monitor acted on h2's silence.
            wait_until(lambda: host_ha(api, "h2")["state"] != "ok", 60, "h2 suspect",
                       interval=0.1)  # fmt: skip
            multihost_corral.kill()
            assert running_on(testbed, "ha-kill") == []
            multihost_corral.start()
            with multihost_corral.client() as fresh:
                wait_until(lambda: _vm(fresh, "ha-kill").get("state") == "running"
                           and _vm(fresh, "ha-kill").get("host") != "h2", 90,
                           "ha-kill restarted after Corral's restart", interval=0.5)  # fmt: skip
                assert host_ha(fresh, "h2")["state"] == "fenced"
        assert watcher.most["ha-kill"] == 1, watcher.most
        bmc_power(bmc, on=True)
        with multihost_corral.client() as fresh:
            until_connected(fresh, "h2")
            wait_until(lambda: host_ha(fresh, "h2")["state"] == "ok", 30, "h2 ok again")
        assert "ha-kill" not in defined_on(testbed, "h2")
        assert len(running_on(testbed, "ha-kill")) == 1
    finally:
        power_on(testbed, h2)
        with multihost_corral.client() as fresh:
            delete(fresh, "ha-kill")
