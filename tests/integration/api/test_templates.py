"""Templates: a shut-off VM's disks frozen as bases, new VMs made from them (linked and full),
refusals that change nothing, and a template deleted only once nothing stands on it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import libvirt
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_images import KernelGuest
from tests.integration.api._support import kernel_vm, wait_log, wait_task


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


def _backing(conn: libvirt.virConnect, path: str) -> str | None:
    conn.storagePoolLookupByName("corral").refresh()
    xml = conn.storageVolLookupByPath(path).XMLDesc()
    if "<backingStore>" not in xml:
        return None
    return xml.split("<backingStore>")[1].split("<path>")[1].split("</path>")[0]


def _volume_paths(conn: libvirt.virConnect) -> set[str]:
    pool = conn.storagePoolLookupByName("corral")
    pool.refresh()
    return {pool.storageVolLookupByName(v).path() for v in pool.listVolumes()}


def _made(client: httpx.Client, template: str, body: dict[str, object]) -> dict[str, object]:
    answer = client.post(f"/templates/{template}/vms", json=body)
    assert answer.status_code == 202, answer.text
    task = wait_task(client, answer.json()["id"])
    assert task["state"] == "succeeded", task
    return client.get(f"/vms/{body['name']}").json()  # type: ignore[no-any-return]


def test_a_template_makes_linked_and_full_vms_and_goes_when_unused(
    client: httpx.Client, conn: libvirt.virConnect, kernel_guest: KernelGuest, corral: CorralServer
) -> None:
    assert client.post("/vms", json=kernel_vm("tpl-src", kernel_guest)).status_code == 201
    original = client.get("/vms/tpl-src").json()["disks"][0]["path"]

    # Refusals change nothing: an unknown VM, a bad name.
    assert client.post("/templates", json={"name": "tpl", "from_vm": "nope"}).status_code == 404
    assert client.post("/templates", json={"name": "a b", "from_vm": "tpl-src"}).status_code == 422
    assert client.get("/templates").json() == []

    made = client.post(
        "/templates", json={"name": "tpl", "from_vm": "tpl-src", "description": "golden"}
    )
    assert made.status_code == 201, made.text
    template = made.json()
    assert [d["path"] for d in template["disks"]] == [original]
    assert (template["host"], template["vcpus"], template["memory_mib"]) == ("local", 1, 256)
    # The source goes on, on an overlay of the now frozen base.
    assert _backing(conn, client.get("/vms/tpl-src").json()["disks"][0]["path"]) == original
    again = client.post("/templates", json={"name": "tpl", "from_vm": "tpl-src"})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]

    linked = _made(client, "tpl", {"name": "from-tpl", "start": True})
    assert _backing(conn, linked["disks"][0]["path"]) == original
    wait_log(client, "from-tpl", rb"corral-heartbeat \d+")
    assert client.get("/vms/from-tpl").json()["state"] == "running"

    full = _made(client, "tpl", {"name": "full-tpl", "clone": "full"})
    assert _backing(conn, full["disks"][0]["path"]) is None
    taken = client.post("/templates/tpl/vms", json={"name": "full-tpl"})
    assert taken.status_code == 409
    assert client.post("/templates/nope/vms", json={"name": "x"}).status_code == 404

    # The CLI's way: `corral vm create NAME --template T`.
    made_cli = corral.cli("vm", "create", "cli-tpl", "--template", "tpl")
    assert made_cli.returncode == 0, made_cli.stderr
    assert "linked clone of template tpl" in made_cli.stdout
    mixed = corral.cli("vm", "create", "cli-tpl2", "--template", "tpl", "--vcpus", "2")
    assert mixed.returncode != 0 and "--vcpus does not go with --template" in mixed.stderr

    busy = client.delete("/templates/tpl")
    assert busy.status_code == 409
    for user in ("tpl-src", "from-tpl", "cli-tpl"):
        assert user in busy.json()["detail"]
    assert "full-tpl" not in busy.json()["detail"]
    assert client.get("/templates/tpl").json()["used_by"] == ["cli-tpl", "from-tpl", "tpl-src"]

    client.post("/vms/from-tpl/stop")
    for vm in ("from-tpl", "full-tpl", "cli-tpl", "tpl-src"):
        deleted = client.delete(f"/vms/{vm}", params={"delete_disks": "true"})
        assert deleted.status_code == 204, deleted.text
    # The template's base outlives the last VM standing on it ...
    assert original in _volume_paths(conn)
    assert client.delete("/templates/tpl").status_code == 204
    # ... and goes with the template.
    assert original not in _volume_paths(conn)
    assert client.get("/templates/tpl").status_code == 404


def test_template_import_refusals_make_nothing(
    client: httpx.Client, corral: CorralServer, tmp_path: Path
) -> None:
    """An ISO is no disk, a template name is taken, a size the host cannot hold: refused in
    words, no template made; an imported template's VM stands on the image itself."""
    qcow = tmp_path / "small.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow), "64M"], check=True)
    iso = tmp_path / "small.iso"
    iso.write_bytes(bytes(32769) + b"CD001" + bytes(2043))
    for path, kind in ((qcow, "disk"), (iso, "iso")):
        done = corral.cli("image", "upload", str(path), "--kind", kind)
        assert done.returncode == 0, done.stderr
    try:
        not_disk = client.post("/template-imports", json={"name": "imp", "image": "small.iso"})
        assert not_disk.status_code == 409 and "needs a disk image" in not_disk.json()["detail"]
        too_big = {"name": "imp", "image": "small.qcow2", "memory_mib": 4194304}
        huge = client.post("/template-imports", json=too_big)
        assert huge.status_code in (409, 507), huge.text
        assert "memory" in huge.json()["detail"]
        assert client.get("/templates").json() == []

        made = client.post("/template-imports", json={"name": "imp", "image": "small.qcow2"})
        assert made.status_code == 201, made.text
        assert made.json()["source_image"] == "small.qcow2"
        again = client.post("/template-imports", json={"name": "imp", "image": "small.qcow2"})
        assert again.status_code == 409 and "already exists" in again.json()["detail"]
        answer = client.post("/templates/imp/vms", json={"name": "imp-vm"})
        assert answer.status_code == 202, answer.text
        assert wait_task(client, answer.json()["id"])["state"] == "succeeded"
        image_path = made.json()["disks"][0]["path"]
        assert client.get("/templates/imp").json()["used_by"] == ["imp-vm"]
        vm_disk = client.get("/vms/imp-vm").json()["disks"][0]["path"]
        assert vm_disk != image_path
    finally:
        client.delete("/vms/imp-vm", params={"delete_disks": "true"})
        client.delete("/templates/imp")
        for image in ("small.qcow2", "small.iso"):
            assert client.delete(f"/images/{image}").status_code == 204
