"""Adoption of domains defined outside Corral, and recovery from libvirtd and Corral restarts."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import libvirt
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import guest_domain_xml, wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.private_libvirtd import PrivateLibvirtd
from tests.integration.api._support import kernel_vm, wait_log, wait_state


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


def _listed(client: httpx.Client) -> dict[str, dict[str, object]]:
    return {vm["name"]: vm for vm in client.get("/vms").json()["items"]}


def test_virsh_defined_domain_is_adopted_and_managed(
    client: httpx.Client, conn: libvirt.virConnect, kernel_guest: KernelGuest
) -> None:
    name = "adopt-me"
    conn.defineXML(guest_domain_xml(name, kernel_guest))
    # The reconciler runs on libvirt's "defined" event (the periodic pass is an hour in tests).
    vm = wait_until(lambda: _listed(client).get(name), 20, f"{name} to be adopted", interval=0.2)
    assert vm["adopted"] is True and vm["state"] == "shutoff"
    assert client.post(f"/vms/{name}/start").json()["state"] == "running"
    assert conn.lookupByName(name).isActive()
    assert client.post(f"/vms/{name}/stop").json()["state"] == "shutoff"
    # Removed behind Corral's back: the inventory says so instead of pretending.
    conn.lookupByName(name).undefine()
    wait_until(
        lambda: _listed(client)[name]["state"] == "missing", 20, f"{name} missing", interval=0.2
    )
    assert client.delete(f"/vms/{name}").status_code == 204
    assert name not in _listed(client)


def test_libvirtd_restart_reconnects_and_events_resume(
    client: httpx.Client,
    corral: CorralServer,
    private_libvirtd: PrivateLibvirtd,
    kernel_guest: KernelGuest,
) -> None:
    name = "survivor"
    assert client.post("/vms", json=kernel_vm(name, kernel_guest, disk_gib=None)).status_code == 201
    client.post(f"/vms/{name}/start")
    wait_log(client, name, rb"corral-heartbeat \d+")

    private_libvirtd.restart_libvirtd()

    def reconnected() -> bool:
        hosts = client.get("/hosts").json()["items"]
        return bool(hosts) and all(h["connected"] for h in hosts)

    wait_until(reconnected, 30, "Corral to reconnect to libvirtd", interval=0.2)
    # Nothing lost: the guest kept running through the daemon restart, and calls work again.
    assert wait_state(client, name, "running")["state"] == "running"
    assert client.post(f"/vms/{name}/pause").json()["state"] == "paused"
    assert client.post(f"/vms/{name}/resume").json()["state"] == "running"
    # Events resume: a domain defined now is adopted through the event-driven reconcile.
    conn = libvirt.open(private_libvirtd.uri)
    try:
        conn.defineXML(guest_domain_xml("after-restart", kernel_guest))
        wait_until(lambda: "after-restart" in _listed(client), 20, "adoption after restart")
        conn.lookupByName("after-restart").undefine()
    finally:
        conn.close()
    wait_until(lambda: _listed(client)["after-restart"]["state"] == "missing", 20, "missing")
    client.delete("/vms/after-restart")
    client.post(f"/vms/{name}/stop")
    assert client.delete(f"/vms/{name}").status_code == 204


def test_corral_restart_rebuilds_state_from_libvirt(
    client: httpx.Client, corral: CorralServer, conn: libvirt.virConnect, kernel_guest: KernelGuest
) -> None:
    name = "steady"
    assert client.post("/vms", json=kernel_vm(name, kernel_guest, disk_gib=None)).status_code == 201
    client.post(f"/vms/{name}/start")
    wait_log(client, name, rb"corral-heartbeat \d+")
    before = _listed(client)
    uptime_before = client.get(f"/vms/{name}").json()["uptime_s"]
    assert uptime_before is not None and uptime_before > 0

    corral.stop()
    # While Corral is down, the world changes: one domain appears, the running VM pauses.
    conn.defineXML(guest_domain_xml("born-offline", kernel_guest))
    conn.lookupByName(name).suspend()
    corral.start()

    with corral.client() as fresh:
        after = {vm["name"]: vm for vm in fresh.get("/vms").json()["items"]}
        assert set(before) | {"born-offline"} == set(after)
        assert after[name]["state"] == "paused"
        # libvirt has no uptime; Corral remembered when it saw the VM start.
        assert after[name]["uptime_s"] > uptime_before
        assert after["born-offline"]["adopted"] is True
        assert fresh.post(f"/vms/{name}/resume").json()["state"] == "running"
        fresh.post(f"/vms/{name}/stop")
        assert fresh.delete(f"/vms/{name}").status_code == 204
        assert fresh.delete("/vms/born-offline").status_code == 204
        assert "born-offline" not in [d.name() for d in conn.listAllDomains()]


def test_half_way_failure_rolls_back(
    client: httpx.Client, conn: libvirt.virConnect, kernel_guest: KernelGuest
) -> None:
    """Volumes are created, then libvirt refuses the domain (five IDE disks do not fit one IDE
    controller): no volume, domain or row may remain."""
    pool = conn.storagePoolLookupByName("corral")
    pool.refresh()
    volumes_before = set(pool.listVolumes())
    spec = kernel_vm("half-way", kernel_guest, disk_gib=None)
    spec["disks"] = [{"name": f"d{i}", "size_gib": 0.1, "bus": "ide"} for i in range(5)]
    answer = client.post("/vms", json=spec)
    assert answer.status_code in (409, 422, 502), answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    pool.refresh()
    assert set(pool.listVolumes()) == volumes_before
    assert "half-way" not in [d.name() for d in conn.listAllDomains()]
    assert client.get("/vms/half-way").status_code == 404
