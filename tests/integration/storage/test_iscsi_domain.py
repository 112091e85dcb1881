"""The ``iscsi`` storage domain kind against the test bed's storage server (tgt): each
test-bed host logs in through a libvirt iscsi-direct pool; a target that refuses is a 409
naming every host and its reason, with nothing recorded and no pool left on any host."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import libvirt
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.multihost import MultiHostTestbed
from corral.testbed.storage_server import StorageServer

pytestmark = pytest.mark.integration

TESTBED_HOSTS = ("h1", "h2", "h3")


@pytest.fixture(scope="module")
def api(multihost_corral: CorralServer) -> Iterator[httpx.Client]:
    with multihost_corral.client() as client:
        yield client


def _pools(testbed: MultiHostTestbed, host: str) -> set[str]:
    conn = libvirt.open(testbed.host(host).unix_uri)
    try:
        return {p.name() for p in conn.listAllStoragePools(0)}
    finally:
        conn.close()


def _iscsi(storage_server: StorageServer, name: str, **changes: str) -> dict[str, Any]:
    body = {"kind": "iscsi", "name": name, "portal": storage_server.portal,
            "target": storage_server.iqn}  # fmt: skip
    return body | changes


def test_iscsi_domain_is_reached_by_every_testbed_host(
    api: httpx.Client, storage_server: StorageServer, testbed: MultiHostTestbed
) -> None:
    created = api.post("/storage-domains", json=_iscsi(storage_server, "san1"))
    assert created.status_code == 201, created.text
    try:
        domain = created.json()
        reach = {h["host"]: h for h in domain["hosts"]}
        luns = sum(s * 2**20 - 512 for s in storage_server.lun_sizes_mib)  # libvirt: 1 block short
        for name in TESTBED_HOSTS:
            assert reach[name]["state"] == "reachable", reach[name]
            assert reach[name]["capacity_bytes"] == luns
            assert "corral-iscsi-san1" in _pools(testbed, name)
        # The manager's own host (the suite's private libvirtd) has no route to the test bed.
        others = [h for n, h in reach.items() if n not in TESTBED_HOSTS]
        assert others and all(h["state"] == "unreachable" and h["reason"] for h in others)
        assert domain["capacity_bytes"] == luns and domain["free_bytes"] == 0
        ops = {o["operation"]: o for o in domain["operations"]}
        assert not ops["create_volume"]["supported"]
        assert "LUNs" in ops["create_volume"]["reason"]
        assert domain["settings"] == {"portal": storage_server.portal, "target": storage_server.iqn}
        checked = api.post("/storage-domains/san1/check")
        assert checked.status_code == 200, checked.text
        assert {h["host"]: h["state"] for h in checked.json()["hosts"]}["h2"] == "reachable"
    finally:
        assert api.delete("/storage-domains/san1").status_code == 204
    for name in TESTBED_HOSTS:
        assert "corral-iscsi-san1" not in _pools(testbed, name)
    assert api.get("/storage-domains/san1").status_code == 404


def test_iscsi_target_that_refuses_is_a_409_naming_hosts_and_reason(
    api: httpx.Client, storage_server: StorageServer, testbed: MultiHostTestbed
) -> None:
    wrong = "iqn.2026-12.test.corral:nothing-here"
    refused = api.post("/storage-domains", json=_iscsi(storage_server, "san2", target=wrong))
    assert refused.status_code == 409, refused.text
    detail = refused.text
    for name in TESTBED_HOSTS:
        assert f"host {name}:" in detail
    assert "Target not found" in detail
    assert api.get("/storage-domains/san2").status_code == 404
    for name in TESTBED_HOSTS:
        assert "corral-iscsi-san2" not in _pools(testbed, name)


def test_iscsi_portal_without_a_server_is_a_409(
    api: httpx.Client, testbed: MultiHostTestbed, storage_server: StorageServer
) -> None:
    nobody = f"198.18.{testbed.slot}.222"
    refused = api.post(
        "/storage-domains", json=_iscsi(storage_server, "san3", portal=f"{nobody}:3260")
    )
    assert refused.status_code == 409, refused.text
    assert "host h1:" in refused.text and "Failed to connect" in refused.text
    assert api.get("/storage-domains/san3").status_code == 404


def test_iscsi_luns_are_the_volumes_and_cannot_be_made_through_corral(
    api: httpx.Client, storage_server: StorageServer
) -> None:
    assert api.post("/storage-domains", json=_iscsi(storage_server, "san4")).status_code == 201
    try:
        listed = api.get("/storage-domains/san4/volumes")
        assert listed.status_code == 200, listed.text
        luns = {v["name"]: v for v in listed.json()["items"]}
        count = len(storage_server.lun_sizes_mib)
        assert sorted(luns) == [f"lun-{n}" for n in range(1, count + 1)]  # LUN 0 (controller) not
        lun1 = luns["lun-1"]
        assert lun1["path"] == f"iscsi://{storage_server.portal}/{storage_server.iqn}/1"
        assert lun1["format"] == "raw" and lun1["capacity_bytes"] == 64 * 2**20 - 512
        made = api.post("/storage-domains/san4/volumes", json={"name": "x", "size_gib": 0.01})
        assert made.status_code == 409 and "made on the target" in made.json()["detail"]
        gone = api.delete("/storage-domains/san4/volumes/lun-1")
        assert gone.status_code == 409 and "removed on the target" in gone.json()["detail"]
    finally:
        assert api.delete("/storage-domains/san4").status_code == 204
