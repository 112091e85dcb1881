"""Storage heartbeats and leases on the test bed (h2's BMC switched off in Corral: no BMC's word
to be had), with every host's heartbeat on the shared domain:

* h2 and its BMC both dead (power lost: its QEMUs, libvirtd, sshd and heartbeat stop): its
  HA VM restarts elsewhere once h2's heartbeat has been still past the self-fence time plus a
  margin (its lease expired), within 120 s, with no administrator involved.

The link cut while h2 runs on with no BMC (its heartbeat moves: nothing may move) is a trial of
``bench/ha.py`` (``cut_nobmc``), not a suite test: when the cut link came back, Corral's process
crashed in libvirt.so twice in full runs (a connection given up on while a call was stuck in it;
see the issue's note).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from corral.testbed.bmc import power_off, power_on
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.multihost import MultiHostTestbed
from tests.integration.ha._support import (
    TwiceWatcher,
    defined_on,
    delete,
    ha_vm,
    host_ha,
    until_connected,
)

pytestmark = pytest.mark.integration

LEASE_WITHIN_S = 120


def _beat(cluster: Path, host: str) -> float:
    path = cluster / ".corral-ha" / f"{host}.beat"
    try:
        return float(json.loads(path.read_text())["seq"])
    except (OSError, ValueError, KeyError):
        return -1.0


def _beating(cluster: Path, host: str) -> None:
    first = _beat(cluster, host)
    wait_until(lambda: first >= 0 and _beat(cluster, host) > first, 60,
               f"{host}'s heartbeat moving", interval=0.5)  # fmt: skip


def test_host_and_bmc_dead_restart_after_the_lease_expired(
    api: httpx.Client, testbed: MultiHostTestbed, cluster: Path, kernel_guest: KernelGuest
) -> None:
    assert api.put("/hosts/h2/power", json={"driver": None}).status_code == 200  # no BMC
    until_connected(api, "h2")
    ha_vm(api, "ha-lease", "h2", kernel_guest, priority=30)
    # Corral started the heartbeat on every host (h2's beats in the shared domain).
    wait_until(lambda: _beat(cluster, "h2") > 0, 60, "h2's heartbeat", interval=0.5)
    _beating(cluster, "h2")
    # ... and Corral saw it moving: a beat never seen moving proves nothing once it stops.
    wait_until(lambda: host_ha(api, "h2").get("heartbeat") == "moving", 60,
               "Corral seeing h2's heartbeat move", interval=0.5)  # fmt: skip
    h2 = testbed.host("h2")
    try:
        with TwiceWatcher(testbed, {"ha-lease"}) as watcher:
            died = time.monotonic()
            power_off(testbed, h2)  # the host and (no BMC) nothing else to ask
            wait_until(lambda: host_ha(api, "h2")["state"] == "fencing", 30, "h2 fencing")
            assert "heartbeat" in host_ha(api, "h2")["reason"], host_ha(api, "h2")
            wait_until(lambda: api.get("/vms/ha-lease").json()["host"] != "h2", LEASE_WITHIN_S,
                       "ha-lease restarted elsewhere", interval=0.5)  # fmt: skip
            took = time.monotonic() - died
            wait_until(lambda: api.get("/vms/ha-lease").json()["state"] == "running", 30,
                       "ha-lease running")  # fmt: skip
        print(f"ha-lease restarted {took:.1f} s after h2 and its BMC died")
        # Not before the lease could expire: the self-fence time (10 s) plus the margin.
        assert took >= 15, took
        assert watcher.most["ha-lease"] == 1, watcher.most
        assert host_ha(api, "h2")["state"] == "fenced"
        fenced = api.get("/audit", params={"action": "host.fence"}).json()["items"]
        assert "leases expired" in fenced[0]["detail"] and fenced[0]["target"] == "h2", fenced[0]
        power_on(testbed, h2)
        until_connected(api, "h2")
        wait_until(lambda: host_ha(api, "h2")["state"] == "ok", 30, "h2 ok again")
        assert "ha-lease" not in defined_on(testbed, "h2")
    finally:
        power_on(testbed, h2)
        delete(api, "ha-lease")
