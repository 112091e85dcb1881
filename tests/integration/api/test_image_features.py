"""qcow2 images that would reach past themselves are refused wherever images enter: a qcow2
whose external data file names a host file (the guest would read and write that file), one
marked corrupt, one with an incompatible feature Corral does not know. Through an upload, an
import (422 at once, before any task), and as a base image or attached volume that is already
in the pool (as an admin may put it there, or a guest's serial log may look). Nothing is left
behind: no volume, no VM."""

from __future__ import annotations

import os
import secrets
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import libvirt
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.private_libvirtd import PrivateLibvirtd
from tests.integration.api._support import kernel_vm

POOL_DIR = "/var/lib/libvirt/corral/images"
VM = "features-vm"


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


@pytest.fixture(scope="module")
def victim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("victim") / "secret"
    path.write_bytes(secrets.token_bytes(64 * 1024))
    path.chmod(0o600)
    return path


def _qcow2(path: Path, *options: str) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *options, str(path), "1M"],
                   check=True)  # fmt: skip
    return path


def _with_incompatible(path: Path, bits: int) -> Path:
    """``path``, a plain qcow2 v3 image, with incompatible feature ``bits`` set in its header."""
    data = bytearray(path.read_bytes())
    (current,) = struct.unpack_from(">Q", data, 72)
    struct.pack_into(">Q", data, 72, current | bits)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def bad_images(tmp_path_factory: pytest.TempPathFactory, victim: Path) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("features")
    return {
        "data file": _qcow2(base / "datafile.qcow2", "-o", f"data_file={victim}"),
        "corrupt": _with_incompatible(_qcow2(base / "corrupt.qcow2"), 1 << 1),
        "unknown feature": _with_incompatible(_qcow2(base / "unknown.qcow2"), 1 << 40),
    }


SAYS = {
    "data file": "external data file",
    "corrupt": "marked corrupt",
    "unknown feature": "features Corral does not know",
}


def _volumes(conn: libvirt.virConnect) -> set[str]:
    pool = conn.storagePoolLookupByName("corral")
    pool.refresh()
    return set(pool.listVolumes())


@pytest.mark.parametrize("kind", sorted(SAYS))
def test_uploads_are_refused(
    client: httpx.Client, conn: libvirt.virConnect, bad_images: dict[str, Path], kind: str
) -> None:
    before = _volumes(conn)
    name = f"feat-{kind.replace(' ', '')}.qcow2"
    answer = client.put(
        f"/images/{name}", params={"kind": "disk"}, content=bad_images[kind].read_bytes()
    )
    assert answer.status_code == 422, answer.text
    assert SAYS[kind] in answer.json()["detail"]
    assert _volumes(conn) == before


@pytest.mark.parametrize("kind", sorted(SAYS))
def test_imports_are_refused_at_once(
    client: httpx.Client, conn: libvirt.virConnect, bad_images: dict[str, Path], kind: str
) -> None:
    before = _volumes(conn)
    name = f"feat-import-{kind.replace(' ', '')}"
    spec = {"name": name, "memory_mib": 64, "disks": [{"import_path": str(bad_images[kind])}]}
    answer = client.post("/vms", json=spec)
    # 422 from the request itself, not a task that fails later.
    assert answer.status_code == 422, answer.text
    assert SAYS[kind] in answer.json()["detail"]
    assert client.get(f"/vms/{name}").status_code == 404
    assert _volumes(conn) == before


@pytest.fixture(scope="module")
def in_pool(
    private_libvirtd: PrivateLibvirtd, bad_images: dict[str, Path]
) -> Iterator[dict[str, str]]:
    """The bad images as volumes of Corral's pool, put there behind Corral's back."""
    pool = private_libvirtd.host_path(POOL_DIR)
    names = {}
    for kind, path in bad_images.items():
        name = f"planted-{kind.replace(' ', '')}.qcow2"
        shutil.copyfile(path, pool / name)
        names[kind] = name
    yield names
    for name in names.values():
        (pool / name).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def vm(client: httpx.Client, kernel_guest: KernelGuest) -> Iterator[str]:
    # Running: its serial log is a volume of the pool.
    made = client.post("/vms", json=kernel_vm(VM, kernel_guest, start=True))
    assert made.status_code == 201, made.text
    yield VM
    client.post(f"/vms/{VM}/stop")
    client.delete(f"/vms/{VM}", params={"delete_disks": True})


@pytest.mark.parametrize("kind", sorted(SAYS))
def test_pool_volumes_are_checked_before_a_guest_gets_them(
    client: httpx.Client,
    conn: libvirt.virConnect,
    in_pool: dict[str, str],
    vm: str,
    kind: str,
) -> None:
    before = _volumes(conn)
    name = f"feat-base-{kind.replace(' ', '')}"
    spec = {"name": name, "memory_mib": 64, "disks": [{"base_image": in_pool[kind]}]}
    answer = client.post("/vms", json=spec)
    assert answer.status_code == 422, answer.text
    assert SAYS[kind] in answer.json()["detail"]
    assert client.get(f"/vms/{name}").status_code == 404
    attach = client.post(f"/vms/{vm}/disks", json={"name": "planted", "volume": in_pool[kind]})
    assert attach.status_code == 422, attach.text
    assert SAYS[kind] in attach.json()["detail"]
    assert [d["name"] for d in client.get(f"/vms/{vm}").json()["disks"]] == ["data"]
    assert _volumes(conn) == before


def test_a_serial_log_is_no_base_image(
    client: httpx.Client, conn: libvirt.virConnect, vm: str
) -> None:
    # What a guest writes to its console lands in the pool: it is never a disk.
    log = f"{vm}.serial.log"
    wait_until(lambda: log in _volumes(conn), 30, "the serial log in the pool", interval=0.2)
    answer = client.post("/vms", json={"name": "feat-log", "disks": [{"base_image": log}]})
    assert answer.status_code == 422, answer.text
    assert "is a serial log, not a disk image" in answer.json()["detail"]


def test_a_clean_image_still_enters(
    client: httpx.Client, conn: libvirt.virConnect, tmp_path: Path
) -> None:
    # Features that change how clusters are read, not which file: dirty, extended L2.
    image = _qcow2(tmp_path / "clean.qcow2", "-o", "extended_l2=on")
    answer = client.put("/images/feat-clean.qcow2", params={"kind": "disk"},
                        content=image.read_bytes())  # fmt: skip
    assert answer.status_code == 201, answer.text
    spec = {"name": "feat-clean", "memory_mib": 64, "disks": [{"base_image": "feat-clean.qcow2"}]}
    made = client.post("/vms", json=spec)
    assert made.status_code == 201, made.text
    assert client.delete("/vms/feat-clean", params={"delete_disks": True}).status_code == 204
    assert client.delete("/images/feat-clean.qcow2").status_code == 204
    assert os.path.exists(image)
