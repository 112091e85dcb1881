"""VXLAN and bridge networks on the three-host test bed, built by Corral's host agent: guests on
one vxlan network reach each other across hosts (pinged from their serial consoles), not a
guest on another vxlan network; a bridge network on hosts whose uplink NICs have other names;
a host lacking a required vxlan network refused as a migration target, with the reason.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator

import httpx
import libvirt
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.multihost import MultiHostTestbed
from tests.integration.api._support import SerialShell, kernel_vm, wait_log, wait_task
from tests.integration.networks._support import (
    create_network,
    delete_network,
    libvirt_bridge,
    remove_vm,
    states,
)

pytestmark = pytest.mark.integration

#: A libvirt network Corral did not make, on h3 only, under the cluster network's name.
FOREIGN = "<network><name>it-req</name><bridge name='virbr-itreq'/></network>"

TESTBED_HOSTS = ("h1", "h2", "h3")


@pytest.fixture(scope="module")
def api(multihost_corral: CorralServer) -> Iterator[httpx.Client]:
    with multihost_corral.client() as client:
        yield client


class Guest:
    """A busybox test guest on ``host`` with one NIC on ``network``, addressed from its
    serial console."""

    def __init__(
        self, corral: CorralServer, api: httpx.Client, image: KernelGuest, name: str, host: str
    ) -> None:
        self.corral, self.api, self.image, self.name, self.host = corral, api, image, name, host

    def launch(self, network: str) -> None:
        """Create and start; :meth:`address` waits for the boot (guests boot side by side)."""
        spec = kernel_vm(self.name, self.image, disk_gib=None, host=self.host)
        made = self.api.post("/vms", json={**spec, "nics": [{"network": network}]})
        assert made.status_code == 201, made.text
        assert self.api.post(f"/vms/{self.name}/start").status_code == 200

    def address(self, address: str) -> None:
        wait_log(self.api, self.name, rb"CORRAL-GUEST-BOOTED", 120)
        self.shell = SerialShell(self.corral, self.name)
        done = self.shell.run(f"ifconfig eth0 {address} netmask 255.255.255.0 up && echo IF-UP")
        assert b"IF-UP" in done.replace(b"echo IF-UP", b""), done[-400:]

    def ping(self, address: str) -> int:
        """How many of 3 pings ``address`` answered (busybox ping's summary)."""
        seen = self.shell.run(f"ping -c 3 -W 2 {address} 2>&1 | tail -n 2", timeout=60)
        found = re.findall(rb"(\d+) packets transmitted, (\d+) packets received", seen)
        assert found, seen[-400:]
        return int(found[-1][1])

    def remove(self) -> None:
        self.api.post(f"/vms/{self.name}/stop")
        self.api.delete(f"/vms/{self.name}")


def test_guests_on_one_vxlan_network_reach_each_other_and_not_another_vxlan(
    api: httpx.Client,
    multihost_corral: CorralServer,
    kernel_guest: KernelGuest,
    testbed: MultiHostTestbed,
) -> None:
    guests = [
        Guest(multihost_corral, api, kernel_guest, "vx-a1", "h1"),
        Guest(multihost_corral, api, kernel_guest, "vx-a2", "h2"),
        Guest(multihost_corral, api, kernel_guest, "vx-b1", "h3"),
    ]
    try:
        for name, vni in (("it-vxa", 5101), ("it-vxb", 5102)):
            task = create_network(api, name=name, kind="vxlan", vni=vni)
            assert task["state"] == "succeeded", task
            found = states(api, name)
            assert all(found[h] == ("applied", None) for h in TESTBED_HOSTS), found
            # The manager's own host has no management address: no tunnel end there.
            assert found["local"][0] == "failed" and "management address" in str(found["local"])
        for guest, network in zip(guests, ("it-vxa", "it-vxa", "it-vxb"), strict=True):
            guest.launch(network)
        for guest, address in zip(guests, ("10.77.0.1", "10.77.0.2", "10.77.0.3"), strict=True):
            guest.address(address)  # 10.77.0.3: same subnet, other segment
        assert guests[0].ping("10.77.0.2") >= 2
        assert guests[1].ping("10.77.0.1") >= 2
        assert guests[0].ping("10.77.0.3") == 0
        assert guests[2].ping("10.77.0.2") == 0
        checked = api.post("/network-checks")
        assert checked.status_code == 200, checked.text
        assert all(states(api, "it-vxa")[h][0] == "applied" for h in TESTBED_HOSTS)
        # A bridge removed by hand on h1 (no guest there uses it-vxb): drift, then put right.
        bridge = api.get("/networks/it-vxb").json()["bridge"]
        _ip(testbed, "h1", "link", "del", bridge)
        assert api.post("/network-checks").status_code == 200
        state, reason = states(api, "it-vxb")["h1"]
        assert state == "drifted" and bridge in str(reason), reason
        again = api.post("/networks/it-vxb/apply")
        assert again.status_code == 202, again.text
        assert wait_task(api, again.json()["id"], 120)["state"] == "succeeded"
        assert states(api, "it-vxb")["h1"] == ("applied", None)
        assert _master_of(testbed, "h1", f"crlv-{bridge[5:]}") == bridge
    finally:
        for guest in guests:
            guest.remove()
        for name in ("it-vxa", "it-vxb"):
            if api.get(f"/networks/{name}").status_code == 200:
                delete_network(api, name)


def test_a_bridge_network_on_hosts_whose_uplink_nics_have_other_names(
    api: httpx.Client,
    multihost_corral: CorralServer,
    kernel_guest: KernelGuest,
    testbed: MultiHostTestbed,
) -> None:
    nics = {h: testbed.host(h).lan_nic for h in TESTBED_HOSTS}
    assert len(set(nics.values())) == 3, nics
    guests = [
        Guest(multihost_corral, api, kernel_guest, "br-g1", "h1"),
        Guest(multihost_corral, api, kernel_guest, "br-g3", "h3"),
    ]
    try:
        for host, nic in nics.items():
            labelled = api.put(f"/hosts/{host}/nics/{nic}/labels/it-lan")
            assert labelled.status_code == 200, labelled.text
        task = create_network(api, name="it-br", kind="bridge", uplink="it-lan")
        assert task["state"] == "succeeded", task
        found = states(api, "it-br")
        assert all(found[h] == ("applied", None) for h in TESTBED_HOSTS), found
        assert found["local"][0] == "failed" and "no NIC labelled 'it-lan'" in str(found["local"])
        bridge = api.get("/networks/it-br").json()["bridge"]
        for host, nic in nics.items():
            wait_until(
                lambda h=host, n=nic: _master_of(testbed, h, n) == bridge,  # type: ignore[misc]
                30,
                f"{nic} of {host} in {bridge}",
            )
        # Guests on h1 and h3 meet on the LAN, through each host's own NIC.
        for guest in guests:
            guest.launch("it-br")
        guests[0].address("10.78.0.1")
        guests[1].address("10.78.0.3")
        assert guests[0].ping("10.78.0.3") >= 2
    finally:
        for guest in guests:
            guest.remove()
        if api.get("/networks/it-br").status_code == 200:
            delete_network(api, "it-br")
        for host, nic in nics.items():
            api.delete(f"/hosts/{host}/nics/{nic}/labels/it-lan")
    for host, nic in nics.items():
        assert _master_of(testbed, host, nic) is None


def _ip(testbed: MultiHostTestbed, host: str, *argv: str) -> None:
    subprocess.run(["ip", "-n", testbed.host(host).netns, *argv], check=True, timeout=10)


def _master_of(testbed: MultiHostTestbed, host: str, nic: str) -> str | None:
    """The bridge ``nic`` of ``host`` is a port of (``ip -j link`` in its namespace)."""
    done = subprocess.run(
        ["ip", "-n", testbed.host(host).netns, "-j", "link", "show", "dev", nic],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    links = json.loads(done.stdout)
    return str(links[0]["master"]) if links and "master" in links[0] else None


def test_a_host_lacking_a_required_vxlan_network_is_refused_as_migration_target(
    api: httpx.Client, testbed: MultiHostTestbed, kernel_guest: KernelGuest
) -> None:
    conn = libvirt.open(testbed.host("h3").unix_uri)
    foreign = conn.networkDefineXML(FOREIGN)
    vm = "it-req-guest"
    try:
        task = create_network(api, name="it-req", kind="vxlan", vni=5200, required=True)
        assert task["state"] == "succeeded", task
        found = states(api, "it-req")
        assert found["h1"] == ("applied", None) and found["h2"] == ("applied", None)
        assert found["h3"][0] == "failed" and "Corral did not make" in str(found["h3"][1])
        assert libvirt_bridge(testbed, "h3", "it-req") == "virbr-itreq"  # left alone

        spec = kernel_vm(vm, kernel_guest, disk_gib=None, host="h1")
        made = api.post("/vms", json={**spec, "nics": [{"network": "it-req"}]})
        assert made.status_code == 201, made.text
        assert api.post(f"/vms/{vm}/start").status_code == 200
        refused = api.post(f"/vms/{vm}/migrate", json={"to": "h3"})
        assert refused.status_code == 409, refused.text
        assert "host h3 lacks the required network it-req" in refused.json()["detail"]
        pinned = api.post("/vms", json={**kernel_vm("it-req-h3", kernel_guest, disk_gib=None,
                                                     host="h3")})  # fmt: skip
        assert pinned.status_code == 409 and "lacks the required network it-req" in pinned.text

        moved = api.post(f"/vms/{vm}/migrate", json={"to": "h2"})
        assert moved.status_code == 202, moved.text
        assert wait_task(api, moved.json()["id"], 180)["state"] == "succeeded"
        wait_until(lambda: api.get(f"/vms/{vm}").json()["host"] == "h2", 30, f"{vm} on h2")
        nics = api.get(f"/vms/{vm}").json()["nics"]
        assert [n["network"] for n in nics] == ["it-req"]
    finally:
        remove_vm(api, vm)
        if api.get("/networks/it-req").status_code == 200:
            delete_network(api, "it-req")
        foreign.undefine()
        conn.close()
