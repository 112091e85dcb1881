"""``corral image …`` and ``corral vm cdrom``.

Refusals, the library and CD-ROM media run against the real app. Uploads that succeed run
against the canned API (its answers checked against /openapi.json): libvirt's test driver
cannot stream into a volume; tests/integration/api/test_images.py uploads for real."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from tests.unit.cli.canned_api import ISO_MAGIC_OFFSET
from tests.unit.cli.conftest import CannedApi, RealApi, Run

GIB = 2**30


def _iso(path: Path, size: int = 3 * 2**20 + 123) -> bytes:
    data = bytearray(size)
    data[ISO_MAGIC_OFFSET : ISO_MAGIC_OFFSET + 5] = b"CD001"
    path.write_bytes(bytes(data))
    return bytes(data)


@pytest.fixture(scope="module")
def pool() -> Iterator[libvirt.virStoragePool]:
    """Corral's pool in the test driver (shared per process), to put images in place."""
    conn = libvirt.open("test:///default")
    yield conn.storagePoolLookupByName("corral")
    conn.close()


def _image(pool: libvirt.virStoragePool, name: str) -> str:
    """An ISO image of the library, as a volume of Corral's pool (its path)."""
    xml = (
        f"<volume><name>_iso.{name}</name><capacity unit='bytes'>{GIB}</capacity>"
        "<target><format type='raw'/></target></volume>"
    )
    return str(pool.createXML(xml, 0).path())


@pytest.fixture
def vm(real_api: RealApi, pool: libvirt.virStoragePool) -> Iterator[str]:
    """A shut-off VM of the real app, deleted afterwards with the images the test put in
    place (the test driver's state outlives the app: later modules would see them)."""
    name = "cli-media"
    with real_api.client() as client:
        made = client.post("/vms", json={"name": name, "disks": [{"size_gib": 1}]})
        assert made.status_code == 201, made.text
        yield name
        assert client.delete(f"/vms/{name}", params={"delete_disks": True}).status_code == 204
    for volume in pool.listAllVolumes():
        if volume.name().startswith("_iso.cli-"):
            volume.delete(0)


def test_upload_streams_the_file_with_its_length(run: Run, api: CannedApi, tmp_path: Path) -> None:
    data = _iso(tmp_path / "debian.iso")
    result = run("image", "upload", str(tmp_path / "debian.iso"), "--kind", "iso", "--host", "h2")
    assert result.exit_code == 0, result.output
    assert api.state.uploads["debian.iso"] == data
    (request,) = api.requests_to("PUT", "/images/debian.iso")
    assert request[3] == {"kind": "iso", "host": "h2"}
    assert result.stdout.strip() == (
        "uploaded iso image debian.iso to host h2 (3 MiB, raw; task task-1)"
    )
    assert "uploading debian.iso" in result.stderr  # the progress bar, on stderr


def test_upload_under_another_name_as_json(run: Run, api: CannedApi, tmp_path: Path) -> None:
    _iso(tmp_path / "x.iso", 40000)
    result = run("image", "upload", str(tmp_path / "x.iso"), "--name", "inst.iso", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["image"]["name"] == "inst.iso" and answer["task"]["state"] == "succeeded"
    assert api.requests_to("PUT", "/images/inst.iso")[0][3] == {}  # kind: the server decides


def test_a_refused_upload_prints_the_reason(
    run_real: Run, real_api: RealApi, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    result = run_real("image", "upload", str(tmp_path / "notes.txt"), "--kind", "iso")
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: notes.txt is no ISO 9660 or UDF image")
    with real_api.client() as client:
        assert client.get("/images/notes.txt").status_code == 404  # nothing left behind
    missing = run_real("image", "upload", str(tmp_path / "nope.iso"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    assert not real_api.requests_to("PUT", "/images/nope.iso")


def test_list_show_and_delete(
    run_real: Run, real_api: RealApi, pool: libvirt.virStoragePool, vm: str
) -> None:
    path = _image(pool, "cli-a.iso")
    _image(pool, "cli-b.iso")
    with real_api.client() as client:
        inserted = client.post(f"/vms/{vm}/cdrom", json={"image": "cli-a.iso"})
        assert inserted.status_code == 200, inserted.text
    listing = run_real("image", "list")
    assert listing.exit_code == 0, listing.output
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["NAME", "DOMAIN", "HOST", "KIND", "FORMAT", "SIZE", "USED", "BY"]
    row_a = next(line.split() for line in lines if line.startswith("cli-a.iso "))
    assert row_a[:5] == ["cli-a.iso", "local", "test", "iso", "raw"] and row_a[-1] == vm
    row_b = next(line.split() for line in lines if line.startswith("cli-b.iso "))
    assert row_b[-1] == "-"
    shown = json.loads(run_real("image", "show", "cli-a.iso", "--json").stdout)
    assert shown["name"] == "cli-a.iso" and shown["path"] == path
    refused = run_real("image", "delete", "cli-a.iso", "--yes")
    assert refused.exit_code == 1 and vm in refused.stderr
    assert run_real("image", "delete", "cli-b.iso", input="n\n").exit_code == 1  # not confirmed
    assert "_iso.cli-b.iso" in pool.listVolumes()
    deleted = run_real("image", "delete", "cli-b.iso", "--yes")
    assert deleted.exit_code == 0 and deleted.stdout.strip() == "deleted image cli-b.iso"
    volumes = pool.listVolumes()
    assert "_iso.cli-b.iso" not in volumes and "_iso.cli-a.iso" in volumes


def test_vm_cdrom_insert_and_eject(
    run_real: Run, real_api: RealApi, pool: libvirt.virStoragePool, vm: str
) -> None:
    path = _image(pool, "cli-c.iso")
    inserted = run_real("vm", "cdrom", vm, "--insert", "cli-c.iso")
    assert inserted.exit_code == 0, inserted.output
    assert inserted.stdout.strip() == f"inserted cli-c.iso into VM {vm}"
    (request,) = real_api.requests_to("POST", f"/vms/{vm}/cdrom")
    assert json.loads(str(request[2])) == {"image": "cli-c.iso"}
    with real_api.client() as client:
        disks = client.get(f"/vms/{vm}").json()["disks"]
    assert [d["path"] for d in disks if d["device"] == "cdrom"] == [path]
    ejected = run_real("vm", "cdrom", vm, "--eject", "--json")
    answer = json.loads(ejected.stdout)
    assert answer["name"] == vm
    assert [d["path"] for d in answer["disks"] if d["device"] == "cdrom"] == [""]  # empty drive
    assert json.loads(str(real_api.requests_to("POST", f"/vms/{vm}/cdrom")[1][2])) == {
        "eject": True
    }
    unknown = run_real("vm", "cdrom", vm, "--insert", "nope.iso")
    assert unknown.exit_code == 1 and "no image named 'nope.iso'" in unknown.stderr
    for args in ([], ["--insert", "cli-c.iso", "--eject"]):
        usage = run_real("vm", "cdrom", vm, *args)
        assert usage.exit_code == 2 and "--insert IMAGE or --eject" in usage.stderr


def test_a_mistyped_image_gets_did_you_mean(
    run_real: Run, pool: libvirt.virStoragePool, vm: str
) -> None:
    _image(pool, "cli-debian.iso")
    shown = run_real("image", "show", "cli-debain.iso")
    assert shown.exit_code == 1
    assert (
        "no image named 'cli-debain.iso' on any connected host: did you mean 'cli-debian.iso'?"
        in (shown.stderr)
    )
    inserted = run_real("vm", "cdrom", vm, "--insert", "cli-debian.is")
    assert inserted.exit_code == 1 and "did you mean 'cli-debian.iso'?" in inserted.stderr
    created = run_real("vm", "create", "cli-typo-iso", "--cdrom", "cli-debain.iso")
    assert created.exit_code == 1
    assert "did you mean 'cli-debian.iso'? Otherwise upload it first" in created.stderr


def test_list_and_upload_name_a_storage_domain(
    run_real: Run, real_api: RealApi, pool: libvirt.virStoragePool, tmp_path: Path
) -> None:
    _image(pool, "cli-d.iso")
    local = run_real("image", "list", "--domain", "local")
    assert local.exit_code == 0, local.output
    row = next(line.split() for line in local.stdout.splitlines() if line.startswith("cli-d"))
    assert row[:3] == ["cli-d.iso", "local", "test"]
    unknown = run_real("image", "list", "--domain", "nas9")
    assert unknown.exit_code == 1 and "nas9" in unknown.stderr
    (tmp_path / "x.iso").write_bytes(b"\0" * 65536)
    refused = run_real("image", "upload", str(tmp_path / "x.iso"), "--domain", "nas9")
    assert refused.exit_code == 1 and "nas9" in refused.stderr
    with real_api.client() as client:
        assert client.get("/images/x.iso").status_code == 404  # nothing left behind
