"""The ``nfs`` storage domain kind against the test bed's storage server (nfs-ganesha): each
test-bed host proves through its host agent (QEMU's NFS client, libnfs) that it mounts the
export and root writes there; an export that refuses is a 409 naming every host and its
reason, with nothing recorded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.multihost import MultiHostTestbed
from corral.testbed.storage_server import EXPORT, StorageServer

pytestmark = pytest.mark.integration

TESTBED_HOSTS = ("h1", "h2", "h3")


@pytest.fixture(scope="module")
def api(multihost_corral: CorralServer) -> Iterator[httpx.Client]:
    with multihost_corral.client() as client:
        yield client


def _nfs(storage_server: StorageServer, name: str, **changes: str) -> dict[str, Any]:
    return {
        "kind": "nfs",
        "name": name,
        "server": storage_server.address,
        "export": EXPORT,
    } | changes


def test_nfs_domain_is_reached_by_every_testbed_host(
    api: httpx.Client, storage_server: StorageServer
) -> None:
    created = api.post("/storage-domains", json=_nfs(storage_server, "nas1"))
    assert created.status_code == 201, created.text
    try:
        domain = created.json()
        reach = {h["host"]: h for h in domain["hosts"]}
        for name in TESTBED_HOSTS:
            assert reach[name]["state"] == "reachable", reach[name]
            assert reach[name]["capacity_bytes"] > 0 and reach[name]["free_bytes"] > 0
        assert domain["settings"] == {"server": storage_server.address, "export": EXPORT}
        ops = {o["operation"]: o for o in domain["operations"]}
        assert ops["create_volume"]["supported"] and ops["linked_clone"]["supported"]
        assert not ops["snapshot"]["supported"] and ops["snapshot"]["reason"]
        # The reach check leaves nothing in the export (its probe directory is removed).
        assert not list(storage_server.export_dir.glob(".corral-probe-*"))
    finally:
        assert api.delete("/storage-domains/nas1").status_code == 204
    assert api.get("/storage-domains/nas1").status_code == 404


def test_nfs_export_that_refuses_is_a_409_naming_hosts_and_reason(
    api: httpx.Client, storage_server: StorageServer
) -> None:
    refused = api.post("/storage-domains", json=_nfs(storage_server, "nas2", export="/nothing"))
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    for name in TESTBED_HOSTS:
        assert f"host {name}:" in detail
    assert "MNT3ERR_ACCES" in detail and f"{storage_server.address}:/nothing" in detail
    assert api.get("/storage-domains/nas2").status_code == 404


def test_nfs_server_that_does_not_answer_is_a_409(
    api: httpx.Client, testbed: MultiHostTestbed, storage_server: StorageServer
) -> None:
    nobody = f"198.18.{testbed.slot}.222"
    refused = api.post("/storage-domains", json=_nfs(storage_server, "nas3", server=nobody))
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert (
        f"host h1: host agent on h1: nfs.check failed: cannot reach NFS server {nobody}" in detail
    )
    assert api.get("/storage-domains/nas3").status_code == 404


def test_nfs_volumes_are_made_listed_grown_and_deleted_over_nfs(
    api: httpx.Client, storage_server: StorageServer, testbed: MultiHostTestbed
) -> None:
    """Through a test-bed host's agent: qemu-img over nfs:// makes and grows, libnfs lists
    and removes; the files appear in (and leave) the server's export directory."""
    assert api.post("/storage-domains", json=_nfs(storage_server, "nas4")).status_code == 201
    volumes = "/storage-domains/nas4/volumes"
    try:
        made = api.post(volumes, json={"name": "nfs-v1.qcow2", "size_gib": 0.0625})
        assert made.status_code == 201, made.text
        volume = made.json()
        assert volume["domain"] == "nas4" and volume["format"] == "qcow2"
        assert volume["capacity_bytes"] == 2**26
        assert volume["path"] == f"nfs://{storage_server.address}{EXPORT}/nfs-v1.qcow2"
        assert (storage_server.export_dir / "nfs-v1.qcow2").read_bytes()[:4] == b"QFI\xfb"
        again = api.post(volumes, json={"name": "nfs-v1.qcow2", "size_gib": 0.0625})
        assert again.status_code == 409, again.text
        huge = api.post(volumes, json={"name": "nfs-huge.qcow2", "size_gib": 65536})
        assert huge.status_code == 409 and "free" in huge.json()["detail"], huge.text
        grown = api.post(f"{volumes}/nfs-v1.qcow2/resize", json={"size_gib": 0.125})
        assert grown.status_code == 200, grown.text
        assert grown.json()["capacity_bytes"] == 2**27
        listed = {v["name"]: v for v in api.get(volumes).json()["items"]}
        assert listed["nfs-v1.qcow2"]["capacity_bytes"] == 2**27
        through_h3 = api.get(volumes, params={"host": "h3"})
        assert "nfs-v1.qcow2" in [v["name"] for v in through_h3.json()["items"]], through_h3.text
        gone = api.delete(f"{volumes}/nfs-v1.qcow2")
        assert gone.status_code == 204, gone.text
        assert not (storage_server.export_dir / "nfs-v1.qcow2").exists()
        assert "nfs-v1.qcow2" not in [v["name"] for v in api.get(volumes).json()["items"]]
        assert api.delete(f"{volumes}/nfs-v1.qcow2").status_code == 404
    finally:
        assert api.delete("/storage-domains/nas4").status_code == 204


def test_nfs_and_iscsi_domains_through_the_cli_show_each_hosts_reach(
    multihost_corral: CorralServer, storage_server: StorageServer
) -> None:
    made = multihost_corral.cli(
        "--json", "storage-domain", "create", "nas5", "--kind", "nfs",
        "--server", storage_server.address, "--export", EXPORT,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    san = multihost_corral.cli(
        "storage-domain", "create", "san5", "--kind", "iscsi",
        "--portal", storage_server.portal, "--target", storage_server.iqn,
    )  # fmt: skip
    assert san.returncode == 0, san.stderr
    try:
        for name in ("nas5", "san5"):
            shown = multihost_corral.cli("storage-domain", "show", name)
            assert shown.returncode == 0, shown.stderr
            for host in TESTBED_HOSTS:
                line = next(x for x in shown.stdout.splitlines() if x.split()[:1] == [host])
                assert "reachable" in line and "unreachable" not in line, shown.stdout
        listed = multihost_corral.cli("volume", "list", "--domain", "san5")
        assert listed.returncode == 0, listed.stderr
        assert "lun-1" in listed.stdout and "lun-4" in listed.stdout
    finally:
        for name in ("nas5", "san5"):
            gone = multihost_corral.cli("storage-domain", "delete", name, "--yes")
            assert gone.returncode == 0, gone.stderr
