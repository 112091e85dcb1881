"""Three namespace hosts enrolled over SSH into a real Corral: TLS everywhere, a guest on h2,
VNC that only Corral's console certificate opens, reconnects, maintenance, rotation."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import libvirt
import pytest

from corral.pki import ClusterPki
from corral.rfb import AuthenticationFailed, RFBClient, SecurityType
from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.multihost import MultiHostTestbed
from tests.integration.api._support import kernel_vm, wait_log, wait_task
from tests.integration.rfb._certs import make_pki

pytestmark = pytest.mark.integration

GUEST = "mh-guest"


@pytest.fixture(scope="module")
def api(multihost_corral: CorralServer) -> Iterator[httpx.Client]:
    with multihost_corral.client() as client:
        yield client


@pytest.fixture(scope="module")
def pki(multihost_corral: CorralServer) -> ClusterPki:
    return ClusterPki(multihost_corral.base_dir / "data")


@pytest.fixture(scope="module")
def guest_on_h2(api: httpx.Client, kernel_guest: KernelGuest) -> Iterator[str]:
    """A TCG guest created and started on h2 (its kernel and initrd are on the shared
    filesystem, so the paths exist "on the host")."""
    answer = api.post("/vms", json=kernel_vm(GUEST, kernel_guest, disk_gib=None, host="h2"))
    assert answer.status_code == 201, answer.text
    assert api.post(f"/vms/{GUEST}/start").status_code == 200
    yield GUEST
    api.post(f"/vms/{GUEST}/stop")
    api.delete(f"/vms/{GUEST}")


def _hosts(server: CorralServer) -> dict[str, dict[str, Any]]:
    listed = server.cli("--json", "host", "list")
    assert listed.returncode == 0, listed.stderr
    return {h["name"]: h for h in json.loads(listed.stdout)["items"]}


def test_hosts_are_enrolled_and_connected_over_tls(
    multihost_corral: CorralServer, testbed: MultiHostTestbed
) -> None:
    hosts = _hosts(multihost_corral)
    for bed_host in testbed.hosts:
        host = hosts[bed_host.name]
        assert host["status"] == "connected", host
        assert host["uri"].startswith(f"qemu+tls://{bed_host.address}/system?pkipath=")
        purposes = {c["purpose"]: c for c in host["certificates"]}
        assert set(purposes) == {
            "libvirt-server", "libvirt-peer-client", "migration-server", "migration-client",
            "vnc-server",
        }  # fmt: skip
        assert all(364 * 86400 < c["expires_in_s"] <= 366 * 86400 for c in purposes.values())
    table = multihost_corral.cli("host", "list")
    assert re.search(r"h2\s+connected\s+qemu\+tls://", table.stdout), table.stdout
    assert "CERTS EXPIRE" in table.stdout
    auth = {"Authorization": f"Bearer {multihost_corral.token}"}
    expiry = r'corral_cert_expiry_seconds\{host="h3",purpose="vnc-server"\} 3\.1\d+e\+07'
    wait_until(  # refreshed every second in the background (CORRAL_METRICS_INTERVAL_S)
        lambda: re.search(expiry, httpx.get(f"{multihost_corral.url}/metrics", headers=auth).text),
        10,
        "h3's certificate expiry in /metrics",
    )


def test_host_files_are_configured_for_tls(testbed: MultiHostTestbed) -> None:
    """What enrollment installed on h1: libvirtd TLS only for Corral's certificate, VNC and
    migration only over TLS, keys readable by root (libvirtd) or QEMU's group only."""
    etc, libvirt_etc = testbed.host("h1").etc_dirs
    libvirtd_conf = (libvirt_etc / "libvirtd.conf").read_text()
    assert 'listen_addr = "' + testbed.host("h1").address + '"' in libvirtd_conf
    assert 'tls_allowed_dn_list = ["CN=corral-manager", "CN=corral-host-*"]' in libvirtd_conf
    assert libvirtd_conf.count("host_uuid =") == 1  # the test bed's own UUID was kept
    qemu_conf = (libvirt_etc / "qemu.conf").read_text()
    wanted = [
        "vnc_tls = 1",
        "vnc_tls_x509_verify = 1",
        "migrate_tls_x509_verify = 1",
        "migrate_tls_force = 1",
        'migrate_tls_x509_cert_dir = "/etc/pki/libvirt-migrate"',
    ]
    for line in wanted:
        assert line in qemu_conf
    assert 'user = "root"' in qemu_conf  # the host's own settings stay
    modes = {
        "pki/libvirt/private/serverkey.pem": 0o600,
        "pki/libvirt/private/clientkey.pem": 0o600,
        "pki/libvirt-migrate/server-key.pem": 0o640,
        "pki/libvirt-migrate/client-key.pem": 0o640,
        "pki/libvirt-vnc/server-key.pem": 0o640,
        "pki/libvirt-vnc/server-cert.pem": 0o644,
    }
    for path, mode in modes.items():
        assert stat.S_IMODE((etc / path).stat().st_mode) == mode, path


def test_a_guest_on_h2_runs_and_its_heartbeat_reaches_the_api(
    api: httpx.Client, guest_on_h2: str
) -> None:
    wait_log(api, guest_on_h2, rb"corral-heartbeat \d+")
    vms = {vm["name"]: vm for vm in api.get("/vms").json()["items"]}
    assert vms[guest_on_h2]["host"] == "h2"
    assert vms[guest_on_h2]["state"] == "running"


def _vnc_endpoint(testbed: MultiHostTestbed, name: str) -> tuple[str, int]:
    conn = libvirt.open(testbed.host("h2").unix_uri)  # the harness's own look, not Corral's
    try:
        xml = conn.lookupByName(name).XMLDesc(0)
    finally:
        conn.close()
    port = int(re.search(r"<graphics type='vnc' port='(\d+)'", xml).group(1))  # type: ignore[union-attr]
    address = re.search(r"<listen type='address' address='([^']+)'", xml).group(1)  # type: ignore[union-attr]
    return address, port


def _context(ca: Path, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None and key is not None:
        context.load_cert_chain(cert, key)
    return context


async def _screenshot(address: str, port: int, context: ssl.SSLContext) -> int:
    async with await RFBClient.connect_tcp(address, port, ssl_context=context) as vnc:
        assert vnc.connected is not None and vnc.connected.security == SecurityType.VENCRYPT
        return int((await vnc.screenshot()).any())


async def test_vnc_of_a_tls_host_opens_only_to_the_console_certificate(
    guest_on_h2: str, testbed: MultiHostTestbed, pki: ClusterPki, tmp_path: Path
) -> None:
    address, port = _vnc_endpoint(testbed, guest_on_h2)
    assert address == testbed.host("h2").address  # on the host's address, never 0.0.0.0
    assert await _screenshot(address, port, pki.console_client_context())
    vnc_ca = pki.vnc_server_ca.cert_path
    # No client certificate, one from a foreign CA, the host's own VNC server certificate:
    # QEMU ends the connection after the TLS handshake.
    make_pki(tmp_path / "foreign")
    etc, _ = testbed.host("h2").etc_dirs
    wrong = [
        _context(vnc_ca, None, None),
        _context(vnc_ca, tmp_path / "foreign/client-cert.pem", tmp_path / "foreign/client-key.pem"),
        _context(vnc_ca, etc / "pki/libvirt-vnc/server-cert.pem",
                 etc / "pki/libvirt-vnc/server-key.pem"),
    ]  # fmt: skip
    for context in wrong:
        with pytest.raises(AuthenticationFailed):
            await _screenshot(address, port, context)


def _status(server: CorralServer, name: str) -> str:
    return str(_hosts(server)[name]["status"])


def test_a_host_whose_libvirtd_dies_is_unreachable_then_reconnects(
    multihost_corral: CorralServer, testbed: MultiHostTestbed
) -> None:
    h3 = testbed.host("h3")
    testbed.kill_daemon(h3, "libvirtd")
    wait_until(
        lambda: _status(multihost_corral, "h3") == "unreachable" or None, 30, "h3 unreachable"
    )
    testbed.start_daemon(h3, "libvirtd", "--listen")
    wait_until(lambda: _status(multihost_corral, "h3") == "connected" or None, 30, "h3 back")


def test_maintenance_refuses_new_vms(
    multihost_corral: CorralServer, api: httpx.Client, kernel_guest: KernelGuest
) -> None:
    on = multihost_corral.cli("host", "maintenance", "h3", "on")
    assert on.returncode == 0, on.stderr
    assert _status(multihost_corral, "h3") == "maintenance"
    try:
        answer = api.post("/vms", json=kernel_vm("mh-refused", kernel_guest, host="h3"))
        assert answer.status_code == 409, answer.text
        assert "maintenance" in answer.json()["detail"]
        created = multihost_corral.cli(
            "vm", "create", "mh-refused", "--host", "h3", "--memory", "128M",
            "--kernel", str(kernel_guest.kernel), "--initrd", str(kernel_guest.initrd),
        )  # fmt: skip
        assert created.returncode != 0 and "maintenance" in created.stderr + created.stdout
    finally:
        off = multihost_corral.cli("host", "maintenance", "h3", "off")
    assert off.returncode == 0, off.stderr
    assert _status(multihost_corral, "h3") == "connected"


def test_rotate_certs_reinstalls_and_reloads_vnc(
    multihost_corral: CorralServer,
    api: httpx.Client,
    guest_on_h2: str,
    testbed: MultiHostTestbed,
    pki: ClusterPki,
) -> None:
    before = {c.purpose: c.not_after for c in pki.host_certs("h2")}
    old = (testbed.host("h2").etc_dirs[0] / "pki/libvirt-vnc/server-cert.pem").read_bytes()
    started = time.monotonic()
    answer = api.post("/hosts/h2/rotate-certs", json={})
    assert answer.status_code == 202, answer.text
    task = wait_task(api, answer.json()["id"])
    assert task["state"] == "succeeded", task["error"]
    assert task["result"]["vnc_reloaded"] == [guest_on_h2]
    assert time.monotonic() - started < 30
    new = (testbed.host("h2").etc_dirs[0] / "pki/libvirt-vnc/server-cert.pem").read_bytes()
    assert new != old
    assert pki.host_certs("h2") and {c.purpose for c in pki.host_certs("h2")} == set(before)
    wait_until(lambda: _status(multihost_corral, "h2") == "connected" or None, 30, "h2 back")
    # The running guest's VNC server now presents the new certificate.
    address, port = _vnc_endpoint(testbed, guest_on_h2)
    assert asyncio.run(_screenshot(address, port, pki.console_client_context()))


def _iso(path: Path) -> Path:
    """A small file that passes for an ISO 9660 image (the library probes its header)."""
    data = bytearray(64 * 1024)
    data[32768:32774] = b"\x01CD001"
    path.write_bytes(bytes(data))
    return path


def test_host_files_are_checked_on_the_vms_own_host_and_images_steer_placement(
    multihost_corral: CorralServer, api: httpx.Client, kernel_guest: KernelGuest, tmp_path: Path
) -> None:
    """A CD-ROM path is looked up on the VM's host itself, through its libvirt, before anything
    is made: a file only h1 has (an image in h1's pool) is accepted for h1 and refused for h2,
    where the VM would have been created and then failed to start ("Cannot access storage
    file"). Without a host, a VM naming that image goes to h1, the one host that has it."""
    cli = multihost_corral.cli
    uploaded = cli("image", "upload", str(_iso(tmp_path / "m.iso")), "--host", "h1",
                   "--name", "mh-media.iso")  # fmt: skip
    assert uploaded.returncode == 0, uploaded.stderr
    path = api.get("/images/mh-media.iso", params={"host": "h1"}).json()["path"]
    # Under host_path_roots (the guests' directory, which every test-bed host sees).
    missing = str(kernel_guest.kernel.resolve().parent / "mh-missing.iso")
    made = ["mh-cd-h2", "mh-cd-gone"]  # deleted after, should the refusals fail
    try:
        for vm, host, cdrom in (("mh-cd-h2", "h2", path), ("mh-cd-gone", "h1", missing)):
            refused = cli("vm", "create", vm, "--host", host, "--cdrom", cdrom,
                          "--boot", "cdrom", "--memory", "128M")  # fmt: skip
            assert refused.returncode == 1, refused.stdout
            assert refused.stderr.strip() == (
                f"error: cdrom {cdrom!r} does not exist on host {host!r} or is not a file: "
                "check the path on that host"
            )
            assert api.get(f"/vms/{vm}").status_code == 404
        made.append("mh-cd-h1")
        accepted = cli("vm", "create", "mh-cd-h1", "--host", "h1", "--cdrom", path,
                       "--boot", "cdrom", "--memory", "128M")  # fmt: skip
        assert accepted.returncode == 0, accepted.stderr
        made.append("mh-cd-placed")
        placed = cli("--json", "vm", "create", "mh-cd-placed", "--cdrom", "mh-media.iso",
                     "--boot", "cdrom", "--memory", "128M")  # fmt: skip
        assert placed.returncode == 0, placed.stderr
        assert json.loads(placed.stdout)["host"] == "h1"
    finally:
        for vm in made:
            api.delete(f"/vms/{vm}")
        api.delete("/images/mh-media.iso", params={"host": "h1"})
