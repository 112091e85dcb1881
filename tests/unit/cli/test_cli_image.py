"""``corral image …`` and ``corral vm cdrom`` against the canned contract API."""

from __future__ import annotations

import json
from pathlib import Path

from corral.model.image import ImageInfo, ImageKind
from corral.model.vm import VmState
from tests.unit.cli.canned_api import ISO_MAGIC_OFFSET, vm_info
from tests.unit.cli.conftest import CannedApi, Run


def _iso(path: Path, size: int = 3 * 2**20 + 123) -> bytes:
    data = bytearray(size)
    data[ISO_MAGIC_OFFSET : ISO_MAGIC_OFFSET + 5] = b"CD001"
    path.write_bytes(bytes(data))
    return bytes(data)


def _image(name: str, used_by: list[str] | None = None) -> ImageInfo:
    return ImageInfo(name=name, host="local", kind=ImageKind.ISO, format="raw",
                     size_bytes=2**30, capacity_bytes=2**30, path=f"/pool/_iso.{name}",
                     used_by=used_by or [])  # fmt: skip


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


def test_a_refused_upload_prints_the_reason(run: Run, api: CannedApi, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    result = run("image", "upload", str(tmp_path / "notes.txt"), "--kind", "iso")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == "error: notes.txt is no ISO 9660 or UDF image"
    missing = run("image", "upload", str(tmp_path / "nope.iso"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_list_show_and_delete(run: Run, api: CannedApi) -> None:
    api.state.images = {"a.iso": _image("a.iso", ["web1"]), "b.iso": _image("b.iso")}
    listing = run("image", "list")
    assert listing.exit_code == 0, listing.output
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["NAME", "HOST", "KIND", "FORMAT", "SIZE", "USED", "BY"]
    assert lines[1].split() == ["a.iso", "local", "iso", "raw", "1", "GiB", "web1"]
    assert lines[2].split()[-1] == "-"
    shown = run("image", "show", "b.iso", "--json")
    assert json.loads(shown.stdout)["name"] == "b.iso"
    refused = run("image", "delete", "a.iso", "--yes")
    assert refused.exit_code == 1 and "used by VM(s) web1" in refused.stderr
    assert run("image", "delete", "b.iso", input="n\n").exit_code == 1  # not confirmed
    deleted = run("image", "delete", "b.iso", "--yes")
    assert deleted.exit_code == 0 and deleted.stdout.strip() == "deleted image b.iso"
    assert set(api.state.images) == {"a.iso"}


def test_vm_cdrom_insert_and_eject(run: Run, api: CannedApi) -> None:
    api.state.vms = {"web1": vm_info("web1", VmState.RUNNING)}
    api.state.images = {"a.iso": _image("a.iso")}
    inserted = run("vm", "cdrom", "web1", "--insert", "a.iso")
    assert inserted.exit_code == 0, inserted.output
    assert inserted.stdout.strip() == "inserted a.iso into VM web1"
    (request,) = api.requests_to("POST", "/vms/web1/cdrom")
    assert json.loads(str(request[2])) == {"image": "a.iso"}
    ejected = run("vm", "cdrom", "web1", "--eject", "--json")
    assert json.loads(ejected.stdout)["name"] == "web1"
    assert json.loads(str(api.requests_to("POST", "/vms/web1/cdrom")[1][2])) == {"eject": True}
    unknown = run("vm", "cdrom", "web1", "--insert", "nope.iso")
    assert unknown.exit_code == 1 and "no image named 'nope.iso'" in unknown.stderr
    for args in ([], ["--insert", "a.iso", "--eject"]):
        usage = run("vm", "cdrom", "web1", *args)
        assert usage.exit_code == 2 and "--insert IMAGE or --eject" in usage.stderr
