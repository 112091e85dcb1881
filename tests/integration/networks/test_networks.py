"""Cluster networks on the three-host test bed, through a real Corral: realised on every host,
NICs naming them, and a host lacking a required network refused as a migration target.

``vxlan`` and ``bridge`` networks (built by the host agent) are in test_networks_vxlan.py."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import libvirt
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.multihost import MultiHostTestbed
from tests.integration.api._support import kernel_vm, wait_task
from tests.integration.networks._support import create_network, delete_network, states

pytestmark = pytest.mark.integration

#: A libvirt network Corral did not make, on h3 only, under the cluster network's name.
FOREIGN = "<network><name>it-req</name><bridge name='virbr-itreq'/></network>"


@pytest.fixture(scope="module")
def api(multihost_corral: CorralServer) -> Iterator[httpx.Client]:
    with multihost_corral.client() as client:
        yield client


def libvirt_bridge(testbed: MultiHostTestbed, host: str, name: str) -> str | None:
    conn = libvirt.open(testbed.host(host).unix_uri)
    try:
        return str(conn.networkLookupByName(name).bridgeName())
    except libvirt.libvirtError:
        return None
    finally:
        conn.close()


def test_a_nat_network_is_realised_on_every_host_and_removed_from_every_host(
    api: httpx.Client, testbed: MultiHostTestbed
) -> None:
    task = create_network(api, name="it-nat", kind="nat")
    assert task["state"] == "succeeded", task
    shown = api.get("/networks/it-nat").json()
    assert {h: s for h, (s, _r) in states(api, "it-nat").items()} == {
        "local": "applied", "h1": "applied", "h2": "applied", "h3": "applied"
    }  # fmt: skip
    for host in ("h1", "h2", "h3"):
        assert libvirt_bridge(testbed, host, "it-nat") == shown["bridge"]
    delete_network(api, "it-nat")
    for host in ("h1", "h2", "h3"):
        assert libvirt_bridge(testbed, host, "it-nat") is None


def test_a_host_lacking_a_required_network_is_refused_as_migration_target(
    api: httpx.Client, testbed: MultiHostTestbed, kernel_guest: KernelGuest
) -> None:
    conn = libvirt.open(testbed.host("h3").unix_uri)
    foreign = conn.networkDefineXML(FOREIGN)
    vm = "it-req-guest"
    try:
        task = create_network(api, name="it-req", kind="isolated", required=True)
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
        api.post(f"/vms/{vm}/stop")
        api.delete(f"/vms/{vm}")
        if api.get("/networks/it-req").status_code == 200:
            delete_network(api, "it-req")
        foreign.undefine()
        conn.close()
