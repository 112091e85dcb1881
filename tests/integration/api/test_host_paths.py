"""Host paths against a real Corral server: a 0600 root-owned canary file named in every field
that takes a path (API and browser forms), as operator, as viewer, and as admin outside
``host_path_roots``. Every request is refused; no VM is created, no volume of the pool ever holds
the canary's bytes, and the canary keeps its owner and mode.

The canary lives outside the roots the test server allows (its session's temporary directory and
``build/guests``); a second path next to it does not exist, and is refused with the same answer.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import libvirt
import pytest
from lxml import etree

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_images import KernelGuest
from corral.testbed.private_libvirtd import PrivateLibvirtd
from tests.integration.api._support import kernel_vm, wait_log

PASSWORD = "host-paths-password-42"
POOL_DIR = "/var/lib/libvirt/corral/images"
VM = "hostpaths-vm"
_CSRF = re.compile(r'name="csrf-token" content="([^"]*)"')
_LOGIN_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass(frozen=True)
class Canary:
    path: Path
    missing: Path
    marker: bytes


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    """1 MiB of random bytes (a plausible raw disk image), root-owned, mode 0600, outside
    every root; the first 64 bytes are what no volume may ever contain."""
    base = Path(tempfile.mkdtemp(prefix="corral-canary-"))
    path = base / "canary.img"
    data = secrets.token_bytes(1024 * 1024)
    path.write_bytes(data)
    os.chown(path, 0, 0)
    path.chmod(0o600)
    yield Canary(path, base / "absent.img", data[:64])
    shutil.rmtree(base)


@pytest.fixture(scope="module")
def admin(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


def _token(corral: CorralServer, admin: httpx.Client, role: str) -> str:
    name = f"paths-{role}-{secrets.token_hex(3)}"
    made = admin.post("/users", json={"name": name, "password": PASSWORD, "role": role})
    assert made.status_code == 201, made.text
    login = httpx.post(
        f"{corral.url}/api/v1/auth/login", json={"username": name, "password": PASSWORD}
    )
    assert login.status_code == 201, login.text
    secret: str = login.json()["secret"]
    return secret


@pytest.fixture(scope="module", params=["operator", "viewer"])
def role(request: pytest.FixtureRequest) -> str:
    param: str = request.param
    return param


@pytest.fixture(scope="module")
def caller(corral: CorralServer, admin: httpx.Client, role: str) -> Iterator[httpx.Client]:
    token = _token(corral, admin, role)
    with httpx.Client(
        base_url=f"{corral.url}/api/v1", headers={"Authorization": f"Bearer {token}"}
    ) as c:
        yield c


@pytest.fixture(scope="module")
def vm(admin: httpx.Client, kernel_guest: KernelGuest) -> Iterator[str]:
    """A shut-off VM with a CD-ROM drive, for the routes that change one."""
    made = admin.post("/vms", json=kernel_vm(VM, kernel_guest, cdrom_drive=True))
    assert made.status_code == 201, made.text
    yield VM
    admin.delete(f"/vms/{VM}", params={"delete_disks": True})


def _spec(name: str, **fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "memory_mib": 64, "disks": [{"size_gib": 1}]}
    spec.update(fields)
    return spec


def _create_bodies(path: str, name: str) -> dict[str, dict[str, Any]]:
    """One VmSpec per path-taking field of ``POST /vms``, each naming ``path`` there."""
    return {
        "import_path": _spec(name, disks=[{"import_path": path}]),
        "cdrom": _spec(name, cdrom=path, boot={"source": "cdrom"}),
        "kernel": _spec(name, boot={"source": "kernel", "kernel": path}),
        "initrd": _spec(name, boot={"source": "disk", "initrd": path}),
    }


def _pool_holds(private_libvirtd: PrivateLibvirtd, marker: bytes) -> list[str]:
    """The files of Corral's pool that contain ``marker``."""
    found = []
    for entry in private_libvirtd.host_path(POOL_DIR).iterdir():
        with entry.open("rb") as handle:
            tail = b""
            while chunk := handle.read(4 * 1024 * 1024):
                if marker in tail + chunk:
                    found.append(entry.name)
                    break
                tail = chunk[-len(marker) :]
    return found


def _assert_untouched(canary: Canary, private_libvirtd: PrivateLibvirtd) -> None:
    info = canary.path.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 0, 0o600)
    assert _pool_holds(private_libvirtd, canary.marker) == []


@pytest.mark.parametrize("field", ["import_path", "cdrom", "kernel", "initrd"])
def test_non_admins_may_not_name_host_files_when_creating_a_vm(
    caller: httpx.Client,
    admin: httpx.Client,
    role: str,
    canary: Canary,
    private_libvirtd: PrivateLibvirtd,
    field: str,
) -> None:
    name = f"paths-{role}-{field.replace('_', '')}"
    answers = [
        caller.post("/vms", json=_create_bodies(str(path), name)[field])
        for path in (canary.path, canary.missing)
    ]
    assert [a.status_code for a in answers] == [403, 403], [a.text for a in answers]
    if role == "operator":
        # The rule's answer, the same for a file that exists and one that does not.
        details = [a.json()["detail"].replace(str(p), "PATH") for a, p in
                   zip(answers, (canary.path, canary.missing), strict=True)]  # fmt: skip
        assert details[0] == details[1]
        assert "only admins may name files on the host" in details[0]
    assert admin.get(f"/vms/{name}").status_code == 404
    _assert_untouched(canary, private_libvirtd)


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        ("POST", "/vms/{vm}/cdrom", {"image": "{path}"}),
        ("POST", "/vms/{vm}/disks", {"name": "extra", "volume": "{path}"}),
        ("POST", "/vms/{vm}/disks", {"name": "extra", "base_image": "{path}"}),
        ("POST", "/vms", _spec("paths-base", disks=[{"base_image": "{path}"}])),
    ],
)
def test_fields_that_take_names_refuse_paths(
    caller: httpx.Client,
    role: str,
    vm: str,
    canary: Canary,
    private_libvirtd: PrivateLibvirtd,
    method: str,
    route: str,
    body: dict[str, Any],
) -> None:
    filled = _fill(body, str(canary.path))
    answer = caller.request(method, route.format(vm=vm), json=filled)
    # A viewer lacks the right at all; an operator sends a malformed name.
    assert answer.status_code == (403 if role == "viewer" else 422), answer.text
    _assert_untouched(canary, private_libvirtd)


def _fill(body: Any, path: str) -> Any:
    if isinstance(body, dict):
        return {k: _fill(v, path) for k, v in body.items()}
    if isinstance(body, list):
        return [_fill(v, path) for v in body]
    return path if body == "{path}" else body


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        (
            "POST",
            "/host-enrollments",
            {"name": "pathhost", "address": "198.51.100.7",
             "ssh": {"destination": "root@198.51.100.7", "key_path": "{path}"}},
        ),
        ("POST", "/hosts/local/rotate-certs",
         {"ssh": {"destination": "root@x", "key_path": "{path}"}}),
    ],
)  # fmt: skip
def test_ssh_key_paths_are_for_admins(
    caller: httpx.Client,
    canary: Canary,
    private_libvirtd: PrivateLibvirtd,
    method: str,
    route: str,
    body: dict[str, Any],
) -> None:
    answer = caller.request(method, route, json=_fill(body, str(canary.path)))
    assert answer.status_code == 403, answer.text
    _assert_untouched(canary, private_libvirtd)


def _browser(corral: CorralServer, admin: httpx.Client, role: str) -> tuple[httpx.Client, str]:
    name = f"paths-ui-{role}-{secrets.token_hex(3)}"
    made = admin.post("/users", json={"name": name, "password": PASSWORD, "role": role})
    assert made.status_code == 201, made.text
    browser = httpx.Client(base_url=corral.url, headers={"Origin": corral.url})
    form = _LOGIN_CSRF.search(browser.get("/login").text)
    assert form
    login = browser.post(
        "/login",
        data={"username": name, "password": PASSWORD, "csrf_token": form.group(1), "next": "/"},
    )
    assert login.status_code == 303, login.text
    token = _CSRF.search(browser.get("/").text)
    assert token
    return browser, token.group(1)


_UI_FIELDS = {
    "import_path": {"disk_source": "import", "disk_image": "{path}"},
    "cdrom": {"disk_source": "blank", "cdrom": "{path}", "boot_source": "cdrom"},
    "kernel": {"disk_source": "blank", "boot_source": "kernel", "kernel": "{path}"},
    "initrd": {"disk_source": "blank", "initrd": "{path}"},
}


def test_the_browser_forms_refuse_host_files(
    corral: CorralServer,
    admin: httpx.Client,
    role: str,
    vm: str,
    canary: Canary,
    private_libvirtd: PrivateLibvirtd,
) -> None:
    browser, csrf = _browser(corral, admin, role)
    headers = {"X-CSRF-Token": csrf, "HX-Request": "true"}
    try:
        for field, extra in _UI_FIELDS.items():
            name = f"paths-ui-{role}-{field.replace('_', '')}"
            base = {"name": name, "disk_size_gib": "1", "memory_mib": "64", "network": "none"}
            for path in (canary.path, canary.missing):
                data = {**base, "boot_source": "disk", **_fill(extra, str(path))}
                answer = browser.post("/ui/vms", data=data, headers=headers)
                if role == "viewer":
                    assert answer.status_code == 403, answer.text
                else:
                    # The form comes back with the rule's sentence above it.
                    assert answer.status_code == 422, answer.text
                    assert "only admins may name files on the host" in answer.text, field
            assert admin.get(f"/vms/{name}").status_code == 404
        media = browser.post(f"/ui/vms/{vm}/cdrom", data={"image": str(canary.path)},
                             headers=headers)  # fmt: skip
        assert media.status_code == (403 if role == "viewer" else 422), media.text
    finally:
        browser.close()
    _assert_untouched(canary, private_libvirtd)


@pytest.mark.parametrize("field", ["import_path", "cdrom", "kernel", "initrd"])
def test_admins_are_refused_outside_the_roots(
    admin: httpx.Client, canary: Canary, private_libvirtd: PrivateLibvirtd, field: str
) -> None:
    name = f"paths-admin-{field.replace('_', '')}"
    for path in (canary.path, canary.missing):
        answer = admin.post("/vms", json=_create_bodies(str(path), name)[field])
        assert answer.status_code == 403, answer.text
        assert "outside the directories" in answer.json()["detail"]
    assert admin.get(f"/vms/{name}").status_code == 404
    _assert_untouched(canary, private_libvirtd)


def test_admins_are_refused_a_link_out_of_a_root(
    admin: httpx.Client, canary: Canary, private_libvirtd: PrivateLibvirtd, tmp_path: Path
) -> None:
    # tmp_path is under the test server's roots; the link in it points at the canary.
    link = tmp_path / "innocent.img"
    link.symlink_to(canary.path)
    answer = admin.post("/vms", json=_spec("paths-admin-link", disks=[{"import_path": str(link)}]))
    assert answer.status_code == 403, answer.text
    _assert_untouched(canary, private_libvirtd)


def test_admins_may_name_files_under_a_root(
    admin: httpx.Client, tmp_path: Path, kernel_guest: KernelGuest, conn: libvirt.virConnect
) -> None:
    # The guest's kernel lives in build/guests, one of the test server's roots; tmp_path is
    # under the other.
    media = tmp_path / "media.iso"
    media.write_bytes(bytes(64 * 1024))
    spec = kernel_vm("paths-admin-ok", kernel_guest, disk_gib=None, cdrom=str(media))
    made = admin.post("/vms", json=spec)
    assert made.status_code == 201, made.text
    try:
        xml = etree.fromstring(conn.lookupByName("paths-admin-ok").XMLDesc(0).encode())
        (source,) = xml.iterfind("./devices/disk[@device='cdrom']/source")
        # libvirt hands the file to QEMU as it is: no owner or label change, ever.
        assert source.get("file") == str(media)
        assert [(s.get("model"), s.get("relabel")) for s in source.iter("seclabel")] == [
            ("dac", "no")
        ]
    finally:
        assert admin.delete("/vms/paths-admin-ok").status_code == 204


def test_operators_boot_kernels_of_the_library(
    corral: CorralServer, admin: httpx.Client, kernel_guest: KernelGuest
) -> None:
    """What an operator names instead of a kernel path: kernel images, uploaded like any."""
    token = _token(corral, admin, "operator")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{corral.url}/api/v1", headers=headers, timeout=120) as op:
        for name, path in (("paths-vmlinuz", kernel_guest.kernel),
                           ("paths-initrd", kernel_guest.initrd)):  # fmt: skip
            sent = op.put(f"/images/{name}", params={"kind": "kernel"}, content=path.read_bytes())
            assert sent.status_code == 201, sent.text
            assert sent.json()["image"]["kind"] == "kernel"
        spec = kernel_vm("paths-kernel-images", kernel_guest, disk_gib=None, start=True)
        spec["boot"].update(kernel="paths-vmlinuz", initrd="paths-initrd")
        made = op.post("/vms", json=spec)
        assert made.status_code == 201, made.text
        try:
            wait_log(op, "paths-kernel-images", rb"CORRAL-GUEST-BOOTED")
            # In use: listed as such, and not deleted under the VM.
            assert op.get("/images/paths-vmlinuz").json()["used_by"] == ["paths-kernel-images"]
            assert op.delete("/images/paths-initrd").status_code == 409
            # A kernel image is no CD-ROM.
            wrong = op.post("/vms/paths-kernel-images/cdrom", json={"image": "paths-vmlinuz"})
            assert wrong.status_code == 409 and "kernel image" in wrong.json()["detail"]
        finally:
            op.post("/vms/paths-kernel-images/stop")
            assert op.delete("/vms/paths-kernel-images").status_code == 204
        for name in ("paths-vmlinuz", "paths-initrd"):
            assert op.delete(f"/images/{name}").status_code == 204
