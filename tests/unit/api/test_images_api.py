"""The image library and CD-ROM media on libvirt's test:///default driver.

The test driver cannot stream into a volume (no virStorageVolUpload) nor change a running
domain's devices: what it can do is tested here (listing, every refusal before a volume exists,
a failure after one exists, media of shut-off VMs, delete while in use); uploads that succeed
and media of running VMs are in tests/integration/api/test_images.py.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from lxml import etree

from corral.model.auth import Role
from tests.unit.api.conftest import NODE_XML, Api

ISO_OFFSET = 32769
MIB = 2**20


def iso_bytes(size: int = 64 * 1024) -> bytes:
    data = bytearray(size)
    data[ISO_OFFSET - 1 : ISO_OFFSET + 5] = b"\x01CD001"
    return bytes(data)


def qcow2_header(backing: bool = False, size: int = 10 * MIB) -> bytes:
    header = struct.pack(">4sIQI I Q", b"QFI\xfb", 3, 512 if backing else 0, 10, 16, size)
    return header + bytes(4096 - len(header))


@pytest.fixture(scope="module")
def conn() -> Iterator[libvirt.virConnect]:
    """The test driver's state, read and changed without Corral (it is shared per process)."""
    connection = libvirt.open("test:///default")
    yield connection
    connection.close()


def _pool(conn: libvirt.virConnect) -> libvirt.virStoragePool:
    return conn.storagePoolLookupByName("corral")


def _volumes(conn: libvirt.virConnect) -> set[str]:
    return set(_pool(conn).listVolumes())


def _make_volume(conn: libvirt.virConnect, name: str, fmt: str = "raw") -> str:
    xml = (
        f"<volume><name>{name}</name><capacity unit='bytes'>{MIB}</capacity>"
        f"<target><format type='{fmt}'/></target></volume>"
    )
    return str(_pool(conn).createXML(xml, 0).path())


def _put(api: Api, name: str, body: bytes, role: Role = Role.OPERATOR, **params: Any) -> Any:
    return api.client.put(
        f"/api/v1/images/{name}", content=body, params=params, headers=api.headers(role)
    )


def _upload_tasks(api: Api, name: str) -> list[dict[str, Any]]:
    tasks = api.client.get("/api/v1/tasks", headers=api.headers()).json()["items"]
    return [t for t in tasks if t["kind"] == "image.upload" and t["target"].endswith("/" + name)]


def test_the_library_lists_images_and_nothing_else(api: Api, conn: libvirt.virConnect) -> None:
    iso_path = _make_volume(conn, "_iso.listed.iso")
    _make_volume(conn, "_disk.listed-base", "qcow2")
    _make_volume(conn, "listed-root.qcow2", "qcow2")  # a VM's disk: not an image
    answer = api.client.get("/api/v1/images", headers=api.headers(Role.VIEWER))
    assert answer.status_code == 200, answer.text
    images = {i["name"]: i for i in answer.json()["items"]}
    assert images["listed.iso"] == {
        "name": "listed.iso",
        "host": "test",
        "domain": "local",
        "kind": "iso",
        "format": "raw",
        "size_bytes": images["listed.iso"]["size_bytes"],
        "capacity_bytes": MIB,
        "path": iso_path,
        "used_by": [],
    }
    assert images["listed-base"]["kind"] == "disk" and images["listed-base"]["format"] == "qcow2"
    assert "listed-root.qcow2" not in images and "listed-root" not in images
    shown = api.client.get("/api/v1/images/listed.iso?host=test", headers=api.headers())
    assert shown.json()["path"] == iso_path
    missing = api.client.get("/api/v1/images/nope", headers=api.headers())
    assert missing.status_code == 404 and "corral image list" in missing.json()["detail"]


REFUSALS: list[tuple[str, str, bytes, dict[str, str], int, str]] = [
    ("not an ISO", "bad1.iso", b"hello" * 10000, {"kind": "iso"}, 422, "CD-ROM media must"),
    ("too short for an ISO", "bad2.iso", b"x" * 100, {"kind": "iso"}, 422, "no ISO 9660"),
    ("qcow2 as an ISO", "bad3.iso", qcow2_header(), {"kind": "iso"}, 422, "qcow2 disk image"),
    ("ISO as a disk", "bad4", iso_bytes(), {"kind": "disk"}, 422, "upload it with kind iso"),
    ("backing file", "bad5", qcow2_header(backing=True), {}, 422, "backing file"),
    ("VMDK", "bad6", b"KDMV" + bytes(1000), {}, 422, "VMDK"),
    ("empty body", "bad7", b"", {}, 422, "body is empty"),
    ("bad name", "a..b", iso_bytes(), {}, 422, "'..'"),
    ("dot name", "_x", iso_bytes(), {}, 422, "1-63 characters"),
    ("bad kind", "bad8", iso_bytes(), {"kind": "floppy"}, 422, "kind"),
    ("unknown host", "bad9", iso_bytes(), {"host": "nowhere"}, 404, "unknown host"),
]


@pytest.mark.parametrize(
    ("case", "name", "body", "params", "status", "says"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_bad_uploads_are_refused_and_leave_nothing(
    api: Api,
    conn: libvirt.virConnect,
    case: str,
    name: str,
    body: bytes,
    params: dict[str, str],
    status: int,
    says: str,
) -> None:
    before = _volumes(conn)
    answer = _put(api, name, body, **params)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert says in answer.json()["detail"]
    assert _volumes(conn) == before
    assert _upload_tasks(api, name) == []  # refused before any task


def test_an_upload_larger_than_the_pool_is_refused_unread(
    api: Api, conn: libvirt.virConnect
) -> None:
    before = _volumes(conn)
    free = _pool(conn).info()[3]
    answer = api.client.put(
        "/api/v1/images/huge.iso",
        content=iso_bytes(),
        headers={**api.headers(Role.OPERATOR), "Content-Length": str(free + MIB)},
    )
    assert answer.status_code == 409, answer.text
    assert answer.json()["title"] == "Insufficient resources"
    detail = answer.json()["detail"]
    assert detail.startswith("host 'test' has ") and detail.endswith("upload to another host")
    assert "free in Corral's storage pool, image 'huge.iso' needs" in detail
    assert _volumes(conn) == before and _upload_tasks(api, "huge.iso") == []
    # Answered before the body was read: the connection closes, so clients stop sending.
    assert answer.headers["connection"] == "close"


def test_an_upload_without_content_length_is_refused(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield iso_bytes()

    answer = api.client.put(
        "/api/v1/images/chunked.iso", content=chunks(), headers=api.headers(Role.OPERATOR)
    )
    assert answer.status_code == 411, answer.text
    assert "Content-Length" in answer.json()["detail"]


def test_a_taken_name_is_refused(api: Api, conn: libvirt.virConnect) -> None:
    _make_volume(conn, "_disk.taken")
    answer = _put(api, "taken", iso_bytes(), kind="iso")  # another kind, the same name
    assert answer.status_code == 409 and "already has an image named 'taken'" in answer.text


def test_a_failure_after_the_volume_exists_deletes_it(api: Api, conn: libvirt.virConnect) -> None:
    # The test driver cannot stream into a volume: the upload fails once the volume is made.
    before = _volumes(conn)
    answer = _put(api, "fails.iso", iso_bytes(), kind="iso")
    assert answer.status_code == 502, answer.text
    assert "not supported" in answer.json()["detail"]
    assert _volumes(conn) == before
    (task,) = _upload_tasks(api, "fails.iso")
    assert task["state"] == "failed" and task["target"] == "test/fails.iso"
    assert "not supported" in task["error"]
    audit = api.client.get("/api/v1/audit?action=image.upload", headers=api.headers()).json()[
        "items"
    ]
    outcomes = [e["outcome"] for e in audit if e["target"] in ("fails.iso", "test/fails.iso")]
    assert len(outcomes) == 2 and all(o.startswith("error:") for o in outcomes)


# -- CD-ROM media of shut-off VMs, and images in use --------------------------------------------


def _cdroms(conn: libvirt.virConnect, vm: str) -> list[tuple[str, str | None, str]]:
    doc = etree.fromstring(conn.lookupByName(vm).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    found = []
    for disk in doc.iterfind("devices/disk[@device='cdrom']"):
        target, source = disk.find("target"), disk.find("source")
        assert target is not None
        file = None if source is None else source.get("file")
        found.append((str(target.get("dev")), file, str(target.get("bus"))))
    return found


def _vm(api: Api, name: str, **extra: Any) -> None:
    spec = {"name": name, "disks": [{"size_gib": 1}], **extra}
    answer = api.client.post("/api/v1/vms", json=spec, headers=api.headers())
    assert answer.status_code == 201, answer.text


def _cdrom(api: Api, vm: str, body: dict[str, Any], role: Role = Role.OPERATOR) -> Any:
    return api.client.post(f"/api/v1/vms/{vm}/cdrom", json=body, headers=api.headers(role))


def test_media_of_a_shut_off_vm_and_delete_while_in_use(api: Api, conn: libvirt.virConnect) -> None:
    iso = _make_volume(conn, "_iso.media.iso")
    _make_volume(conn, "_disk.media-disk", "qcow2")
    _vm(api, "media1")
    assert _cdroms(conn, "media1") == []
    inserted = _cdrom(api, "media1", {"image": "media.iso"})
    assert inserted.status_code == 200, inserted.text
    assert "connection" not in inserted.headers  # its body was read: the connection stays
    assert _cdroms(conn, "media1") == [("sda", iso, "sata")]  # a drive was added
    cdrom = next(d for d in inserted.json()["disks"] if d["device"] == "cdrom")
    assert cdrom["path"] == iso
    image = api.client.get("/api/v1/images/media.iso", headers=api.headers()).json()
    assert image["used_by"] == ["media1"]
    refused = api.client.delete("/api/v1/images/media.iso", headers=api.headers())
    assert refused.status_code == 409 and "used by VM(s) media1" in refused.json()["detail"]
    for body, status, says in [
        ({"image": "media-disk"}, 409, "disk image"),
        ({"image": "nope.iso"}, 404, "no image named 'nope.iso' on host 'test'"),
        ({"image": "media.iso", "eject": True}, 422, "either"),
        ({}, 422, "either"),
    ]:
        answer = _cdrom(api, "media1", body)
        assert answer.status_code == status, answer.text
        assert says in answer.json()["detail"]
        assert _cdroms(conn, "media1") == [("sda", iso, "sata")]  # unchanged
    assert _cdrom(api, "media1", {"eject": True}, Role.VIEWER).status_code == 403
    ejected = _cdrom(api, "media1", {"eject": True})
    assert ejected.status_code == 200, ejected.text
    assert _cdroms(conn, "media1") == [("sda", None, "sata")]  # the drive stays, empty
    assert _cdrom(api, "media1", {"eject": True}).status_code == 200  # already empty: fine
    deleted = api.client.delete("/api/v1/images/media.iso", headers=api.headers())
    assert deleted.status_code == 204, deleted.text
    assert "_iso.media.iso" not in _volumes(conn)
    audit = api.client.get("/api/v1/audit?action=vm.cdrom", headers=api.headers()).json()["items"]
    assert {e["outcome"] for e in audit if e["target"] == "media1"} >= {"ok", "denied"}


def test_eject_without_a_drive_and_an_empty_drive_at_creation(
    api: Api, conn: libvirt.virConnect
) -> None:
    _vm(api, "media2")
    answer = _cdrom(api, "media2", {"eject": True})
    assert answer.status_code == 409 and "no CD-ROM drive" in answer.json()["detail"]
    _vm(api, "media3", cdrom_drive=True)
    assert _cdroms(conn, "media3") == [("sda", None, "sata")]


def test_a_vm_created_from_a_library_iso(api: Api, conn: libvirt.virConnect) -> None:
    iso = _make_volume(conn, "_iso.install.iso")
    _vm(api, "media4", cdrom="install.iso", boot={"source": "cdrom"})
    assert _cdroms(conn, "media4") == [("sda", iso, "sata")]
    spec = {"name": "media5", "cdrom": "nope.iso", "boot": {"source": "cdrom"}}
    unknown = api.client.post("/api/v1/vms", json=spec, headers=api.headers())
    assert unknown.status_code == 404 and "no ISO image 'nope.iso' on any" in unknown.text


def test_a_disk_image_is_a_base_for_linked_clones(api: Api, conn: libvirt.virConnect) -> None:
    _make_volume(conn, "_disk.golden", "qcow2")
    _vm(api, "media6", disks=[{"base_image": "golden"}])
    image = api.client.get("/api/v1/images/golden", headers=api.headers()).json()
    assert image["used_by"] == ["media6"]
    deleted = api.client.delete("/api/v1/vms/media6?delete_disks=true", headers=api.headers())
    assert deleted.status_code == 204
    assert "_disk.golden" in _volumes(conn)  # the library's image outlives its last clone


def test_an_image_on_another_host_is_refused(
    api: Api, conn: libvirt.virConnect, tmp_path: Path
) -> None:
    node = tmp_path / "node.xml"
    node.write_text(NODE_XML)
    # A test driver node file is no URI the API accepts (it reads a file): registered the way
    # Corral's configuration registers its local host.
    hosts = api.services.hosts

    async def register() -> None:
        uri = f"test://{node}"
        await hosts.register("other", uri, None, await hosts.identify("other", uri))

    assert api.client.portal is not None
    api.client.portal.call(register)
    try:
        other = api.services.hosts.get("other")
        api.client.portal.call(other.storage.create_blank_volume, "_iso.far.iso", MIB)
        _vm(api, "media7")
        answer = _cdrom(api, "media7", {"image": "far.iso"})
        assert answer.status_code == 409, answer.text
        assert "is on host other, but VM 'media7' is on host 'test'" in answer.json()["detail"]
        assert _cdroms(conn, "media7") == []
        listed = api.client.get("/api/v1/images?host=other", headers=api.headers()).json()["items"]
        assert [(i["name"], i["host"]) for i in listed] == [("far.iso", "other")]
    finally:
        api.client.delete("/api/v1/vms/media7", headers=api.headers())
        api.client.delete("/api/v1/hosts/other", headers=api.headers())


# -- placement: a VM without a host goes where its images are ----------------------------------


@pytest.fixture
def other(api: Api, tmp_path: Path) -> Iterator[str]:
    """A second host, ``other`` (a test driver node with 2 CPUs and 4 GiB)."""
    node = tmp_path / "node.xml"
    node.write_text(NODE_XML)
    hosts = api.services.hosts

    async def register() -> None:
        uri = f"test://{node}"
        await hosts.register("other", uri, None, await hosts.identify("other", uri))

    assert api.client.portal is not None
    api.client.portal.call(register)
    yield "other"
    api.client.delete("/api/v1/hosts/other", headers=api.headers())


def _create(api: Api, spec: dict[str, Any]) -> Any:
    return api.client.post("/api/v1/vms", json=spec, headers=api.headers())


def test_placement_chooses_among_the_hosts_holding_the_images(
    api: Api, conn: libvirt.virConnect, other: str
) -> None:
    """Without an image the policy would pack the VM onto ``test`` (the fuller host); with its
    ISO on ``other`` only, it goes there instead of being refused with "upload it to 'test'"."""
    far = api.services.hosts.get(other)
    assert api.client.portal is not None
    api.client.portal.call(far.storage.create_blank_volume, "_iso.placed.iso", MIB)
    spec = {"name": "placed1", "cdrom": "placed.iso", "boot": {"source": "cdrom"}}
    answer = _create(api, spec)
    assert answer.status_code == 201, answer.text
    assert answer.json()["host"] == other
    plain = _create(api, {"name": "placed2", "disks": [{"size_gib": 1}]})
    assert plain.status_code == 201 and plain.json()["host"] == "test", plain.text
    for vm in ("placed1", "placed2"):
        api.client.delete(f"/api/v1/vms/{vm}?delete_disks=true", headers=api.headers())


def test_images_no_host_holds_together_are_refused_before_placement(
    api: Api, conn: libvirt.virConnect, other: str
) -> None:
    far = api.services.hosts.get(other)
    assert api.client.portal is not None
    api.client.portal.call(far.storage.create_blank_volume, "_iso.split.iso", MIB)
    _make_volume(conn, "_kernel.split-kernel")
    spec = {
        "name": "split1",
        "cdrom": "split.iso",
        "boot": {"source": "kernel", "kernel": "split-kernel"},
    }
    answer = _create(api, spec)
    assert answer.status_code == 409, answer.text
    assert answer.json()["detail"] == (
        "no host has every image VM 'split1' names (ISO image 'split.iso' is only on other; "
        "kernel image 'split-kernel' is only on test): upload them to one host "
        "(`corral image upload FILE --host HOST`)"
    )
    nowhere = _create(api, {**spec, "cdrom": "nowhere.iso"})
    assert nowhere.status_code == 404, nowhere.text
    assert "no ISO image 'nowhere.iso' on any connected host" in nowhere.json()["detail"]
    # The image's host cannot take the VM (2 CPUs: 8 vCPUs at most): each host's obstacle.
    wide = _create(
        api, {"name": "split2", "vcpus": 9, "cdrom": "split.iso", "disks": [{"size_gib": 1}]}
    )
    assert wide.status_code == 409, wide.text
    detail = wide.json()["detail"]
    assert "test lacks ISO image 'split.iso'" in detail and "other has 8 of 8 vCPUs free" in detail
    assert "upload the images it names to another host" in detail
    assert api.client.get("/api/v1/vms/split2", headers=api.headers()).status_code == 404
