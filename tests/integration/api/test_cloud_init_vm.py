"""A VM from a template imported from a cloud image of the library, configured by cloud-init
from Corral's seed: its hostname, a user with an SSH key, a runcmd marker and a static
address, all read from the guest's serial console (one TCG boot). Refused user-data makes
nothing; the settings are shown without their secrets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import libvirt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from corral.testbed.cloud_guest import CloudGuest
from corral.testbed.corral_server import CorralServer
from tests.integration.api._support import wait_log, wait_task

# systemd and cloud-init's stages take ~50 s under TCG on an idle machine; a full suite on two
# shared cores can be several times slower.
BOOT_TIMEOUT = 300
ADDRESS = "192.0.2.10/24"

#: What each runcmd line prints, tagged, on the console (ttyS0, Corral's serial log).
SHOWN = {
    "HOST": "$(hostname)",
    "KEYS": "$(cat /home/alice/.ssh/authorized_keys)",
    "MARK": "$(ls /var/lib/corral-marker-*)",
    "IP": "$(ip -4 -o addr show scope global)",
}


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


def _ssh_key() -> str:
    public = Ed25519PrivateKey.generate().public_key()
    raw = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return raw.decode() + " tester@corral"


def _user_data(nonce: str) -> str:
    shows = "".join(
        f"  - [sh, -c, 'echo CORRAL-{tag}-{nonce} {what} > /dev/console']\n"
        for tag, what in SHOWN.items()
    )
    return f"#cloud-config\nruncmd:\n  - [sh, -c, 'touch /var/lib/corral-marker-{nonce}']\n{shows}"


def _pool_volumes(conn: libvirt.virConnect) -> set[str]:
    pool = conn.storagePoolLookupByName("corral")
    pool.refresh()
    return set(pool.listVolumes())


def test_a_vm_from_a_cloud_template_comes_up_as_its_seed_says(
    client: httpx.Client,
    conn: libvirt.virConnect,
    corral: CorralServer,
    cloud_guest: CloudGuest,
    tmp_path: Path,
) -> None:
    # The cloud image, uploaded to the library, becomes a template as it is.
    uploaded = corral.cli("image", "upload", str(cloud_guest.disk), "--name", "debian.qcow2",
                          "--kind", "disk")  # fmt: skip
    assert uploaded.returncode == 0, uploaded.stderr
    refused_kind = client.post("/template-imports", json={"name": "x", "image": "nope.qcow2"})
    assert refused_kind.status_code == 404, refused_kind.text
    made = corral.cli("template", "import", "debian-cloud", "--image", "debian.qcow2",
                      "--memory", "512", "--nic", "user")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "from image debian.qcow2" in made.stdout
    template = client.get("/templates/debian-cloud").json()
    assert (template["source_image"], template["memory_mib"]) == ("debian.qcow2", 512)
    held = client.delete("/images/debian.qcow2")
    assert held.status_code == 409 and "template(s) debian-cloud" in held.json()["detail"]

    # User-data cloud-init refuses: its words, and nothing made (no VM, no volume).
    before = _pool_volumes(conn)
    key_file = tmp_path / "key.pub"
    key = _ssh_key()
    key_file.write_text(key + "\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("#cloud-config\nruncmd: 5\n")
    refused = corral.cli(
        "vm", "create", "c2", "--template", "debian-cloud", "--user-data", str(bad),
        "--ssh-key", str(key_file),
    )  # fmt: skip
    assert refused.returncode != 0
    assert "not valid cloud-config" in refused.stderr and "runcmd" in refused.stderr
    assert client.get("/vms/c2").status_code == 404
    assert _pool_volumes(conn) == before

    nonce = uuid.uuid4().hex[:8]
    body = {
        "name": "c1",
        "start": True,
        "cloud_init": {
            "hostname": "c1-host",
            "users": [{"name": "alice", "ssh_authorized_keys": [key], "password": "s3cret-pw"}],
            "network": [{"nic": 0, "mode": "static", "address": ADDRESS, "gateway": "192.0.2.1"}],
            "user_data": _user_data(nonce),
        },
    }
    answer = client.post("/templates/debian-cloud/vms", json=body)
    assert answer.status_code == 202, answer.text
    assert wait_task(client, answer.json()["id"])["state"] == "succeeded"

    def line(tag: str) -> str:
        pattern = rb"CORRAL-%s-%s ([^\r\n]*)" % (tag.encode(), nonce.encode())
        return wait_log(client, "c1", pattern, timeout=BOOT_TIMEOUT).group(1).decode()

    assert line("HOST") == "c1-host"
    assert line("KEYS") == key
    assert line("MARK") == f"/var/lib/corral-marker-{nonce}"
    assert f"inet {ADDRESS}" in line("IP")

    # Shown without secrets: no password, no hash, no user-data (its digest and size).
    shown = client.get("/vms/c1/cloud-init")
    assert shown.status_code == 200, shown.text
    info = shown.json()
    assert info["users"] == [
        {"name": "alice", "ssh_authorized_keys": [key], "has_password": True, "sudo": False}
    ]
    assert info["user_data"]["size_bytes"] == len(_user_data(nonce).encode())
    for secret in ("s3cret-pw", "$6$", "runcmd", nonce):
        assert secret not in shown.text
    assert "s3cret-pw" not in client.get("/vms/c1").text

    client.post("/vms/c1/stop")
    assert client.delete("/vms/c1", params={"delete_disks": "true"}).status_code == 204
    assert "c1-cidata.iso" not in _pool_volumes(conn)  # the seed goes with its VM
    assert client.get("/vms/c1/cloud-init").status_code == 404
    # The template goes; its image stays in the library until deleted there.
    assert client.delete("/templates/debian-cloud").status_code == 204
    assert client.delete("/images/debian.qcow2").status_code == 204
