"""A VM's cloud-init settings replaced: the seed on the pool is written again with the new
settings and a new instance ID (what makes cloud-init apply them at the next boot); refusals
change nothing. The kernel test guest ignores the seed, so nothing boots for this."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import libvirt
import pycdlib
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_images import KernelGuest
from tests.integration.api._support import kernel_vm, wait_task

KEY = (
    Ed25519PrivateKey.generate()
    .public_key()
    .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    .decode()
    + " a@b"
)


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


def _seed(conn: libvirt.virConnect, vm: str) -> dict[str, str]:
    pool = conn.storagePoolLookupByName("corral")
    pool.refresh()
    # Through libvirt: the private libvirtd's pool is in its own mount namespace.
    volume = pool.storageVolLookupByName(f"{vm}-cidata.iso")
    stream = conn.newStream()
    volume.download(stream, 0, 0)
    chunks: list[bytes] = []
    stream.recvAll(lambda _st, data, into: into.append(data) or len(data), chunks)
    stream.finish()
    data = b"".join(chunks)
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(data))
    files = {}
    names = {c.rock_ridge.name().decode() for c in iso.list_children(rr_path="/") if c.rock_ridge}
    for name in names & {"meta-data", "user-data", "network-config"}:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, rr_path=f"/{name}")
        files[name] = out.getvalue().decode()
    iso.close()
    return files


def test_cloud_init_settings_replaced_write_the_seed_again(
    client: httpx.Client,
    conn: libvirt.virConnect,
    corral: CorralServer,
    kernel_guest: KernelGuest,
    tmp_path: Path,
) -> None:
    assert client.post("/vms", json=kernel_vm("ci-src", kernel_guest)).status_code == 201
    assert (
        client.post("/templates", json={"name": "ci-tpl", "from_vm": "ci-src"}).status_code == 201
    )
    body = {"name": "ci1", "cloud_init": {"hostname": "first", "ssh_authorized_keys": [KEY]}}
    made = client.post("/templates/ci-tpl/vms", json=body)
    assert made.status_code == 202, made.text
    assert wait_task(client, made.json()["id"])["state"] == "succeeded"
    try:
        before = client.get("/vms/ci1/cloud-init").json()
        meta = yaml.safe_load(_seed(conn, "ci1")["meta-data"])
        assert (meta["instance-id"], meta["local-hostname"]) == (before["instance_id"], "first")

        # Refused, nothing changed: user-data cloud-init rejects, a running VM, no seed.
        bad = {"hostname": "second", "user_data": "#cloud-config\nruncmd: 5\n"}
        refused = client.put("/vms/ci1/cloud-init", json=bad)
        assert refused.status_code == 422 and "runcmd" in refused.text
        assert client.post("/vms/ci1/start").status_code == 200
        running = client.put("/vms/ci1/cloud-init", json={"hostname": "second"})
        assert running.status_code == 409 and "shut it down" in running.json()["detail"]
        client.post("/vms/ci1/stop")
        seedless = client.put("/vms/ci-src/cloud-init", json={"hostname": "x"})
        assert seedless.status_code == 409 and "no cloud-init seed" in seedless.json()["detail"]
        assert client.get("/vms/ci1/cloud-init").json() == before
        assert yaml.safe_load(_seed(conn, "ci1")["meta-data"]) == meta

        # Replaced through the CLI: hostname, a user with a key, user-data.
        key_file, data_file = tmp_path / "k.pub", tmp_path / "cfg.yaml"
        key_file.write_text(KEY + "\n")
        data_file.write_text("#cloud-config\nruncmd:\n  - [touch, /run/replaced]\n")
        done = corral.cli("vm", "cloud-init", "set", "ci1", "--hostname", "second",
                          "--user", "bob", "--ssh-key", str(key_file),
                          "--user-data", str(data_file))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "next boot" in done.stdout and "/run/replaced" not in done.stdout
        after = client.get("/vms/ci1/cloud-init").json()
        assert after["instance_id"] != before["instance_id"]
        assert after["hostname"] == "second" and after["users"][0]["name"] == "bob"
        assert "/run/replaced" not in str(after) and after["user_data"]["size_bytes"] > 0
        seed = _seed(conn, "ci1")
        meta = yaml.safe_load(seed["meta-data"])
        assert (meta["instance-id"], meta["local-hostname"]) == (after["instance_id"], "second")
        user_data = yaml.safe_load(seed["user-data"])
        assert user_data["runcmd"] == [["touch", "/run/replaced"]]
        assert [u["name"] for u in user_data["users"] if isinstance(u, dict)] == ["bob"]
        shown = corral.cli("vm", "cloud-init", "show", "ci1")
        assert shown.returncode == 0 and "bob (sudo), 1 key(s)" in shown.stdout
    finally:
        for vm in ("ci1", "ci-src"):
            client.post(f"/vms/{vm}/stop")
            client.delete(f"/vms/{vm}", params={"delete_disks": "true"})
        client.delete("/templates/ci-tpl")
