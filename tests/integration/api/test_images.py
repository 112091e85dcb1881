"""The image library and CD-ROM media on a real Corral server and a private libvirtd.

ISO images are built here with Debian's genisoimage; the bytes Corral stored are read back from
the pool's directory, and media changes are checked in libvirt's own XML (live and persistent).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import libvirt
import pytest
from lxml import etree

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.private_libvirtd import PrivateLibvirtd
from tests.integration.api._support import kernel_vm, wait_state, wait_task

MIB = 2**20


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


@pytest.fixture(scope="module")
def iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 MiB-ish ISO 9660 image made by genisoimage (random content: no compression)."""
    base = tmp_path_factory.mktemp("iso")
    tree = base / "tree"
    tree.mkdir()
    (tree / "payload.bin").write_bytes(os.urandom(4 * MIB))
    (tree / "README").write_text("Corral media test\n")
    out = base / "media.iso"
    subprocess.run(
        ["genisoimage", "-quiet", "-r", "-V", "CORRALTEST", "-o", str(out), str(tree)], check=True
    )
    return out


def _volumes(conn: libvirt.virConnect) -> set[str]:
    pool = conn.storagePoolLookupByName("corral")
    pool.refresh()
    return set(pool.listVolumes())


def _upload_task(client: httpx.Client, name: str) -> dict[str, Any] | None:
    tasks = client.get("/tasks", params={"limit": 50}).json()["items"]
    return next((t for t in tasks if t["kind"] == "image.upload" and t["target"].endswith(
        "/" + name)), None)  # fmt: skip


def _slowly(data: bytes, piece: int = 256 * 1024, pause: float = 0.05) -> Iterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]
        time.sleep(pause)


def _zeros(most: int) -> Iterator[bytes]:
    for _ in range(most // MIB):
        yield bytes(MIB)


def test_upload_through_the_api_reports_progress_and_stores_the_bytes(
    client: httpx.Client, iso: Path, private_libvirtd: PrivateLibvirtd
) -> None:
    data = iso.read_bytes()
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        with httpx.Client(base_url=client.base_url, headers=client.headers) as other:
            while not stop.is_set():
                task = _upload_task(other, "api.iso")
                if task is not None and task["bytes_done"] is not None:
                    seen.append(task["bytes_done"])
                time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        answer = client.put(
            "/images/api.iso",
            params={"kind": "iso"},
            content=_slowly(data),
            headers={"Content-Length": str(len(data))},
        )
    finally:
        stop.set()
        watcher.join()
    assert answer.status_code == 201, answer.text
    image, task = answer.json()["image"], answer.json()["task"]
    assert (image["name"], image["kind"], image["format"]) == ("api.iso", "iso", "raw")
    assert image["capacity_bytes"] == len(data) and image["used_by"] == []
    assert answer.headers["location"] == f"/api/v1/images/api.iso?host={image['host']}"
    assert task["state"] == "succeeded" and task["target"] == f"{image['host']}/api.iso"
    assert task["bytes_done"] == task["bytes_total"] == len(data)
    assert any(0 < done < len(data) for done in seen), f"no progress seen between: {seen}"
    assert seen == sorted(seen)
    assert private_libvirtd.host_path(image["path"]).read_bytes() == data
    listed = {i["name"]: i for i in client.get("/images").json()["items"]}
    assert listed["api.iso"]["path"] == image["path"]


def test_upload_through_the_cli(
    corral: CorralServer, iso: Path, tmp_path: Path, private_libvirtd: PrivateLibvirtd
) -> None:
    done = corral.cli("image", "upload", str(iso), "--name", "cli.iso")
    assert done.returncode == 0, done.stderr
    assert "uploaded iso image cli.iso to host local" in done.stdout
    assert "uploading media.iso" in done.stderr  # the progress bar
    qcow = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow), "64M"], check=True)
    disk = corral.cli("--json", "image", "upload", str(qcow), "--kind", "disk")
    assert disk.returncode == 0, disk.stderr
    image = json.loads(disk.stdout)["image"]
    assert (image["name"], image["kind"], image["format"]) == ("base.qcow2", "disk", "qcow2")
    assert image["capacity_bytes"] == 64 * MIB
    stored = private_libvirtd.host_path(image["path"])
    info = json.loads(
        subprocess.run(["qemu-img", "info", "-U", "--output=json", str(stored)],
                       capture_output=True, text=True, check=True).stdout
    )  # fmt: skip
    assert (info["format"], info["virtual-size"]) == ("qcow2", 64 * MIB)
    assert stored.read_bytes() == qcow.read_bytes()
    listing = corral.cli("image", "list")
    assert "cli.iso" in listing.stdout and "base.qcow2" in listing.stdout
    tasks = json.loads(corral.cli("--json", "task", "list").stdout)["items"]
    uploads = [t for t in tasks if t["kind"] == "image.upload" and t["state"] == "succeeded"]
    assert {t["target"] for t in uploads} >= {"local/cli.iso", "local/base.qcow2"}
    assert corral.cli("image", "delete", "base.qcow2", "--yes").returncode == 0


def test_refusals_leave_no_volume(
    client: httpx.Client, conn: libvirt.virConnect, tmp_path: Path
) -> None:
    before = _volumes(conn)
    text = os.urandom(100_000)
    answer = client.put("/images/notiso.iso", params={"kind": "iso"}, content=text)
    assert answer.status_code == 422, answer.text
    assert "CD-ROM media must be ISO images" in answer.json()["detail"]
    free = conn.storagePoolLookupByName("corral").info()[3]
    huge = client.put(
        "/images/huge.iso",
        params={"kind": "iso"},
        content=_zeros(256 * MIB),  # the server answers and closes long before
        headers={"Content-Length": str(free + MIB)},
    )
    assert huge.status_code == 409, huge.text
    assert "free in Corral's storage pool, image 'huge.iso' needs" in huge.json()["detail"]
    assert _volumes(conn) == before
    assert _upload_task(client, "notiso.iso") is None and _upload_task(client, "huge.iso") is None


def _raw_upload(corral: CorralServer, name: str, total: int, first: bytes) -> socket.socket:
    """Start an upload by hand: headers for ``total`` bytes, then only ``first``."""
    sock = socket.create_connection(("127.0.0.1", corral.port))
    head = (
        f"PUT /api/v1/images/{name}?kind=iso HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {corral.token}\r\nContent-Length: {total}\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    sock.sendall(head.encode() + first)
    return sock


def _answer_while_sending(sock: socket.socket, data: bytes, sent: int, timeout: float = 30) -> str:
    """Send ``data`` from ``sent`` on in 64 KiB steps until the whole HTTP answer (headers and
    body) has come back; the answer as text."""
    sock.settimeout(0.05)
    answer = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sent < len(data):
            try:
                sock.sendall(data[sent : sent + 64 * 1024])
                sent += 64 * 1024
            except OSError:
                sent = len(data)  # the server closed its side: only read now
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        answer += chunk
        head, sep, body = answer.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
             if line.lower().startswith(b"content-length:")),
            None,
        )  # fmt: skip
        if sep and length is not None and len(body) >= length:
            break
    return answer.decode(errors="replace")


def _running_upload(client: httpx.Client, conn: libvirt.virConnect, name: str) -> dict[str, Any]:
    def started() -> dict[str, Any] | None:
        task = _upload_task(client, name)
        volume = f"_iso.{name}" in _volumes(conn)
        return task if task and task["state"] == "running" and volume else None

    return wait_until(started, 30, f"the upload of {name} to run", interval=0.1)


def test_a_client_that_goes_away_leaves_no_volume(
    corral: CorralServer, client: httpx.Client, conn: libvirt.virConnect, iso: Path
) -> None:
    data = iso.read_bytes()
    sock = _raw_upload(corral, "gone.iso", len(data), data[: 2 * MIB])
    task = _running_upload(client, conn, "gone.iso")
    sock.close()
    final = wait_task(client, task["id"], timeout=60)
    assert final["state"] == "failed"
    assert "the client went away after" in final["error"] and "nothing was kept" in final["error"]
    assert "_iso.gone.iso" not in _volumes(conn)
    assert client.get("/images/gone.iso").status_code == 404


def test_a_cancelled_upload_leaves_no_volume(
    corral: CorralServer, client: httpx.Client, conn: libvirt.virConnect, iso: Path
) -> None:
    data = iso.read_bytes()
    sock = _raw_upload(corral, "cancel.iso", len(data), data[: 2 * MIB])
    try:
        task = _running_upload(client, conn, "cancel.iso")
        assert 0 < task["bytes_done"] < len(data) or task["bytes_done"] == 0
        # The upload notices the cancel at its next block: keep sending a little at a time
        # until the server answers (whenever the cancel request gets there).
        cancel = threading.Thread(target=lambda: client.post(f"/tasks/{task['id']}/cancel"))
        cancel.start()
        answer = _answer_while_sending(sock, data, 2 * MIB)
        cancel.join()
        assert answer.startswith("HTTP/1.1 409"), answer
        assert "cancelled" in answer
    finally:
        sock.close()
    assert client.get(f"/tasks/{task['id']}").json()["state"] == "cancelled"
    assert "_iso.cancel.iso" not in _volumes(conn)


def test_running_uploads_keep_their_room_in_the_pool(
    corral: CorralServer, client: httpx.Client, conn: libvirt.virConnect, iso: Path
) -> None:
    """Two uploads that each fit the pool's free space but not both: the second is refused
    while the first runs (its volume still small), naming the free space and the promise;
    once the first has ended, its room is free again."""
    data = iso.read_bytes()
    free = conn.storagePoolLookupByName("corral").info()[3]
    share = free * 6 // 10
    first = _raw_upload(corral, "room1.iso", share, data[: 2 * MIB])
    try:
        task = _running_upload(client, conn, "room1.iso")
        second = client.put(
            "/images/room2.iso",
            params={"kind": "iso"},
            content=_zeros(256 * MIB),  # the server answers and closes long before
            headers={"Content-Length": str(share)},
        )
        assert second.status_code == 409, second.text
        detail = second.json()["detail"]
        assert "free in Corral's storage pool, of which" in detail
        assert "is promised to uploads still running there; image 'room2.iso' needs" in detail
        assert "_iso.room2.iso" not in _volumes(conn)
    finally:
        first.close()
    assert wait_task(client, task["id"], timeout=60)["state"] == "failed"
    again = _raw_upload(corral, "room3.iso", share, data[: 2 * MIB])
    try:
        _running_upload(client, conn, "room3.iso")  # past the room check
    finally:
        again.close()
    wait_until(lambda: "_iso.room3.iso" not in _volumes(conn), 60, "room3.iso to be deleted")
    wait_until(lambda: "promised" not in _refusal(client, free * 2), 30, "the promise to end")


def _refusal(client: httpx.Client, size: int) -> str:
    """The detail of the refusal of an upload of ``size`` bytes (more than the pool has)."""
    answer = client.put(
        "/images/toolarge.iso",
        params={"kind": "iso"},
        content=_zeros(256 * MIB),
        headers={"Content-Length": str(size)},
    )
    assert answer.status_code == 409, answer.text
    return str(answer.json()["detail"])


# -- media ------------------------------------------------------------------------------------


def _cdrom_sources(conn: libvirt.virConnect, vm: str) -> tuple[list[str | None], list[str | None]]:
    """(live, persistent) sources of the domain's CD-ROM drives, from libvirt itself."""
    dom = conn.lookupByName(vm)
    result = []
    for flags in (0, libvirt.VIR_DOMAIN_XML_INACTIVE):
        doc = etree.fromstring(dom.XMLDesc(flags))
        result.append([
            (d.find("source").get("file") if d.find("source") is not None else None)
            for d in doc.iterfind("devices/disk[@device='cdrom']")
        ])  # fmt: skip
    return result[0], result[1]


@pytest.fixture(scope="module")
def media_iso(client: httpx.Client, iso: Path) -> str:
    data = iso.read_bytes()
    answer = client.put("/images/media.iso", content=data)  # kind: what the bytes are
    assert answer.status_code == 201, answer.text
    assert answer.json()["image"]["kind"] == "iso"
    return str(answer.json()["image"]["path"])


def _vm(client: httpx.Client, guest: KernelGuest, name: str, *, start: bool, **extra: Any) -> None:
    answer = client.post("/vms", json=kernel_vm(name, guest, start=start, **extra))
    assert answer.status_code == 201, answer.text
    if start:
        wait_state(client, name, "running")


def test_media_of_a_running_vm(
    client: httpx.Client, conn: libvirt.virConnect, kernel_guest: KernelGuest, media_iso: str
) -> None:
    _vm(client, kernel_guest, "media-run", start=True, cdrom_drive=True)
    try:
        assert _cdrom_sources(conn, "media-run") == ([None], [None])
        inserted = client.post("/vms/media-run/cdrom", json={"image": "media.iso"})
        assert inserted.status_code == 200, inserted.text
        assert _cdrom_sources(conn, "media-run") == ([media_iso], [media_iso])
        image = client.get("/images/media.iso").json()
        assert image["used_by"] == ["media-run"]
        refused = client.delete("/images/media.iso")
        assert refused.status_code == 409 and "media-run" in refused.json()["detail"]
        ejected = client.post("/vms/media-run/cdrom", json={"eject": True})
        assert ejected.status_code == 200, ejected.text
        assert _cdrom_sources(conn, "media-run") == ([None], [None])
        assert client.get("/images/media.iso").json()["used_by"] == []
    finally:
        client.post("/vms/media-run/stop")
        client.delete("/vms/media-run", params={"delete_disks": "true"})


def test_a_running_vm_without_a_drive_gets_a_409_and_a_stopped_one_a_drive(
    client: httpx.Client, conn: libvirt.virConnect, kernel_guest: KernelGuest, media_iso: str
) -> None:
    _vm(client, kernel_guest, "media-nodrive", start=True)
    try:
        refused = client.post("/vms/media-nodrive/cdrom", json={"image": "media.iso"})
        assert refused.status_code == 409, refused.text
        assert "shut it down" in refused.json()["detail"]
        assert _cdrom_sources(conn, "media-nodrive") == ([], [])
        client.post("/vms/media-nodrive/stop")
        wait_state(client, "media-nodrive", "shutoff")
        inserted = client.post("/vms/media-nodrive/cdrom", json={"image": "media.iso"})
        assert inserted.status_code == 200, inserted.text
        assert _cdrom_sources(conn, "media-nodrive") == ([media_iso], [media_iso])
        # QEMU takes the new drive: the VM starts with the image in it.
        assert client.post("/vms/media-nodrive/start").status_code == 200
        assert _cdrom_sources(conn, "media-nodrive")[0] == [media_iso]
        client.post("/vms/media-nodrive/stop")
        wait_state(client, "media-nodrive", "shutoff")
        assert client.post("/vms/media-nodrive/cdrom", json={"eject": True}).status_code == 200
        assert _cdrom_sources(conn, "media-nodrive") == ([None], [None])
        assert client.delete("/images/media.iso").status_code == 204
        assert client.get("/images/media.iso").status_code == 404
    finally:
        client.post("/vms/media-nodrive/stop")
        client.delete("/vms/media-nodrive", params={"delete_disks": "true"})
