"""Live migration on the three-host test bed (TCG guests with a canary in RAM and a heartbeat).

The guests stay light (the canary is written once at boot; docs/testbed.md: heavy dirtying
under TCG damages guests now and then, on every transport) and are checked after every
migration: the heartbeat goes on from where it was (no reset), the canary is intact.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import libvirt
import pytest

from corral.pki import CertificateAuthority
from corral.pki.cluster import SERVER
from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import BOOT_MARKER, CANARY, CANARY_COPIES, CANARY_FILE, KernelGuest
from corral.testbed.multihost import MultiHostTestbed
from tests.integration.api._support import SerialShell, kernel_vm, wait_task
from tests.integration.migration._wire import FlippingRelay, canary_copies, capture, detour

pytestmark = pytest.mark.integration

TRAVELLER = "mig-traveller"
HEARTBEAT = re.compile(rb"corral-heartbeat (\d+)")


@pytest.fixture(scope="module")
def api(multihost_corral: CorralServer) -> Iterator[httpx.Client]:
    with multihost_corral.client() as client:
        yield client


def make_guest(api: httpx.Client, image: KernelGuest, name: str, host: str) -> None:
    answer = api.post("/vms", json=kernel_vm(name, image, disk_gib=None, host=host))
    assert answer.status_code == 201, answer.text
    assert api.post(f"/vms/{name}/start").status_code == 200
    wait_until(lambda: last_heartbeat(api, name) > 1, 90, f"{name}'s heartbeat", interval=0.3)


def remove_guest(api: httpx.Client, name: str) -> None:
    api.post(f"/vms/{name}/stop")
    api.delete(f"/vms/{name}")


def last_heartbeat(api: httpx.Client, name: str) -> int:
    """The newest heartbeat number in the VM's serial log (on the host it runs on now)."""
    answer = api.get(f"/vms/{name}/log", params={"tail_bytes": 2048})
    found = HEARTBEAT.findall(answer.content) if answer.status_code == 200 else []
    return int(found[-1]) if found else 0


def where(api: httpx.Client, name: str) -> tuple[str, str]:
    """Where the VM is, once every test-bed host is connected (a test that restarted a
    daemon may have left one reconnecting)."""
    for host in ("h1", "h2", "h3"):
        wait_until(
            lambda h=host: api.get(f"/hosts/{h}").json()["status"] != "unreachable",  # type: ignore[misc]
            60,
            f"{host} connected",
        )
    vm = api.get(f"/vms/{name}").json()
    return vm["host"], vm["state"]


def migrate(api: httpx.Client, name: str, to: str, **body: Any) -> dict[str, Any]:
    answer = api.post(f"/vms/{name}/migrate", json={"to": to, **body})
    assert answer.status_code == 202, answer.text
    return wait_task(api, answer.json()["id"], 180)


def serial_file(testbed: MultiHostTestbed, host: str, name: str) -> Path:
    """The VM's serial log as virtlogd writes it on ``host`` (the harness's own look)."""
    return testbed.host(host).base / "lib" / "corral" / "images" / f"{name}.serial.log"


class Heartbeat:
    """Notes where the guest's heartbeat is before a migration, then checks that it goes on
    from there on the destination: the first heartbeat the destination logs is the next one
    (a reset would log a new boot and count again from 1)."""

    def __init__(self, api: httpx.Client, testbed: MultiHostTestbed, name: str, to: str) -> None:
        self.api, self.name = api, name
        self.before = last_heartbeat(api, name)
        self.read_at = time.monotonic()
        self.file = serial_file(testbed, to, name)
        self.offset = self.file.stat().st_size if self.file.exists() else 0

    def goes_on(self) -> None:
        def new_beats() -> list[int] | None:
            data = self.file.read_bytes()[self.offset :] if self.file.exists() else b""
            assert BOOT_MARKER not in data, data[-500:]
            return [int(n) for n in HEARTBEAT.findall(data)] or None

        beats = wait_until(new_beats, 30, f"{self.name}'s heartbeat on its new host")
        # One heartbeat a second: the first one there is at most about that many seconds on.
        late = int(time.monotonic() - self.read_at) + 3
        assert self.before < beats[0] <= self.before + late, (self.before, late, beats)
        assert beats == list(range(beats[0], beats[0] + len(beats))), beats


def assert_canary_intact(corral: CorralServer, name: str) -> None:
    """Every copy of the canary is still in the guest's RAM (its tmpfs file), unchanged."""
    token = CANARY.decode()
    seen = SerialShell(corral, name).run(f"grep -c '^{token}$' {CANARY_FILE}")
    assert re.search(rb"\r\n" + str(CANARY_COPIES).encode() + rb"\r\n", seen), seen[-300:]


def running_on(api: httpx.Client, name: str, host: str) -> None:
    assert where(api, name) == (host, "running")


@pytest.fixture(scope="module")
def traveller(api: httpx.Client, kernel_guest: KernelGuest) -> Iterator[str]:
    """One guest that travels through the tests of this module (boots once)."""
    make_guest(api, kernel_guest, TRAVELLER, "h1")
    yield TRAVELLER
    remove_guest(api, TRAVELLER)


def _domain_uuids(testbed: MultiHostTestbed, host: str) -> set[str]:
    conn = libvirt.open(testbed.host(host).unix_uri)  # the harness's own look
    try:
        return {d.UUIDString() for d in conn.listAllDomains(0)}
    finally:
        conn.close()


# -- the default: TLS, with no guest memory on the wire ------------------------------------------
def test_round_trip_over_tls_keeps_the_guest_and_leaves_no_canary_on_the_wire(
    api: httpx.Client,
    multihost_corral: CorralServer,
    testbed: MultiHostTestbed,
    traveller: str,
    tmp_path: Path,
) -> None:
    assert where(api, traveller) == ("h1", "running")
    with capture(testbed, tmp_path / "tls.pcap") as pcap:
        for to in ("h2", "h3", "h1"):
            heartbeat = Heartbeat(api, testbed, traveller, to)
            if to == "h3":  # one hop through the real CLI
                done = multihost_corral.cli("vm", "migrate", traveller, "--to", to)
                assert done.returncode == 0, done.stderr
                assert f"migrated VM {traveller} to h3 over tls in" in done.stdout
            else:
                task = migrate(api, traveller, to)
                assert task["state"] == "succeeded", task["error"]
                result = task["result"]
                assert result["transport"] == "tls" and result["destination"] == to
                assert result["downtime_ms"] is not None and result["total_time_ms"] > 0
                steps = [s["phase"] for s in result["migration"]["steps"]]
                assert steps == ["checking", "prepared", "migrating", "finishing", "completed"]
            running_on(api, traveller, to)
            heartbeat.goes_on()
    assert pcap.stat().st_size > 10_000_000  # the guest's memory did cross this bridge
    assert canary_copies(pcap) == 0
    assert_canary_intact(multihost_corral, traveller)


def test_bad_requests_leave_the_vm_where_it_is(
    api: httpx.Client, kernel_guest: KernelGuest, traveller: str
) -> None:
    host, _ = where(api, traveller)
    other = "h2" if host != "h2" else "h3"
    cases = [
        ({"to": host}, 409, f"already runs on host {host}"),
        ({"to": "h9"}, 404, "unknown destination host 'h9'"),
        ({"to": "local"}, 409, "destination host local was added by URI, not enrolled"),
        ({"to": other, "transport": "insecure"}, 403, "allow_insecure_migration true"),
        ({"to": other, "transport": "ssh", "parallel_connections": 2}, 409, "multifd"),
    ]
    for body, status, words in cases:
        answer = api.post(f"/vms/{traveller}/migrate", json=body)
        assert answer.status_code == status, (body, answer.text)
        assert words in answer.json()["detail"], answer.json()["detail"]
    # A destination in maintenance.
    assert api.put(f"/hosts/{other}/maintenance", json={"enabled": True}).status_code == 200
    try:
        answer = api.post(f"/vms/{traveller}/migrate", json={"to": other})
        assert answer.status_code == 409 and "in maintenance" in answer.json()["detail"]
    finally:
        api.put(f"/hosts/{other}/maintenance", json={"enabled": False})
    # A shut-off VM.
    spec = kernel_vm("mig-off", kernel_guest, disk_gib=None, host=host)
    assert api.post("/vms", json=spec).status_code == 201
    try:
        answer = api.post("/vms/mig-off/migrate", json={"to": other})
        assert answer.status_code == 409 and "is shut off" in answer.json()["detail"]
    finally:
        api.delete("/vms/mig-off")
    running_on(api, traveller, host)


def test_ssh_transport(api: httpx.Client, testbed: MultiHostTestbed, traveller: str) -> None:
    host, _ = where(api, traveller)
    to = "h2" if host != "h2" else "h1"
    heartbeat = Heartbeat(api, testbed, traveller, to)
    task = migrate(api, traveller, to, transport="ssh")
    assert task["state"] == "succeeded", task["error"]
    assert task["result"]["transport"] == "ssh"
    running_on(api, traveller, to)
    heartbeat.goes_on()


def test_ssh_preflight_names_an_unknown_host_key_and_the_listing_agrees(
    api: httpx.Client, testbed: MultiHostTestbed, traveller: str
) -> None:
    """The source's ssh client (the test bed's wrapper) forgets the destination's host key:
    the migration is refused before any task with the real cause, and the transports
    listing calls ssh unusable for that pair, until the key is back."""
    host, _ = where(api, traveller)
    to = "h2" if host != "h2" else "h3"
    address = testbed.host(to).address
    known_hosts = testbed.base / "ssh" / "known_hosts"
    kept = known_hosts.read_text()
    known_hosts.write_text(
        "".join(line for line in kept.splitlines(True) if not line.startswith(f"{address},"))
    )
    tasks_before = len(api.get("/tasks").json()["items"])
    try:
        answer = api.post(f"/vms/{traveller}/migrate", json={"to": to, "transport": "ssh"})
        assert answer.status_code == 409, answer.text
        detail = answer.json()["detail"]
        assert f"host key verification failed for {to} ({address}): " in detail, detail
        assert f"on {host}: `ssh-keyscan {address} >> ~/.ssh/known_hosts`" in detail, detail
        assert "certificate" not in detail and "rotate-certs" not in detail
        assert len(api.get("/tasks").json()["items"]) == tasks_before  # refused before any task

        pair = {"source": host, "destination": to}
        listed = {t["name"]: t for t in api.get("/migration/transports", params=pair).json()}
        assert not listed["ssh"]["usable"]
        assert f"host key verification failed for {to}" in listed["ssh"]["reason"]
        assert listed["tls"]["usable"] and listed["tls"]["reason"] is None
        every = {t["name"]: t for t in api.get("/migration/transports").json()}
        assert not every["ssh"]["usable"]
        assert f"{host} → {to}: host key verification failed" in every["ssh"]["reason"]
        assert f"{to} → {host}" not in every["ssh"]["reason"]  # the other way works
    finally:
        known_hosts.write_text(kept)
    listed = {t["name"]: t for t in api.get("/migration/transports", params=pair).json()}
    assert listed["ssh"]["usable"] and listed["ssh"]["reason"] is None
    running_on(api, traveller, host)


def test_cancel_aborts_the_job_and_the_vm_stays(api: httpx.Client, traveller: str) -> None:
    host, _ = where(api, traveller)
    to = "h3" if host != "h3" else "h2"
    answer = api.post(f"/vms/{traveller}/migrate", json={"to": to, "bandwidth_mib_s": 5})
    task_id = answer.json()["id"]
    wait_until(
        lambda: (api.get(f"/tasks/{task_id}").json()["bytes_done"] or 0) > 0, 30, "first bytes"
    )
    cancelled = api.post(f"/tasks/{task_id}/cancel")
    assert cancelled.status_code == 200
    task = wait_task(api, task_id)
    assert task["state"] == "cancelled"
    steps = [s["phase"] for s in task["result"]["migration"]["steps"]]
    assert steps[-2:] == ["aborting", "cancelled"]
    running_on(api, traveller, host)


# -- attacks and faults: the VM always stays on its source ---------------------------------------
def test_a_relay_that_flips_one_byte_fails_the_migration(
    api: httpx.Client, multihost_corral: CorralServer, testbed: MultiHostTestbed, traveller: str
) -> None:
    host, _ = where(api, traveller)
    to = "h2" if host != "h2" else "h3"
    source, destination = testbed.host(host), testbed.host(to)
    with (
        FlippingRelay(testbed.gateway, destination.address) as relay,
        detour(source, destination, testbed.gateway),
    ):
        task = migrate(api, traveller, to)
    assert relay.connections >= 1 and relay.flipped
    assert task["state"] == "failed"
    error = task["error"]
    assert f"the encrypted migration stream from {host} to {to} broke" in error
    assert "TLS" in error and f"the VM keeps running on {host}" in error
    running_on(api, traveller, host)
    assert _gone_from(testbed, to, traveller, api)
    assert_canary_intact(multihost_corral, traveller)


def _gone_from(testbed: MultiHostTestbed, host: str, name: str, api: httpx.Client) -> bool:
    uuid = api.get(f"/vms/{name}").json()["uuid"]
    wait_until(lambda: uuid not in _domain_uuids(testbed, host), 30, f"{name} gone from {host}")
    return True


def test_a_destination_certificate_from_another_ca_is_refused(
    api: httpx.Client, testbed: MultiHostTestbed, traveller: str, tmp_path: Path
) -> None:
    host, _ = where(api, traveller)
    to = "h3" if host != "h3" else "h2"
    migrate_dir = testbed.host(to).etc_dirs[0] / "pki" / "libvirt-migrate"
    saved = {p.name: p.read_bytes() for p in migrate_dir.iterdir()}
    rogue = CertificateAuthority(tmp_path / "rogue", "Rogue migration CA", "Rogue")
    rogue.ensure()
    issued = rogue.issue(to, SERVER, dns_names=[to], ips=[testbed.host(to).address])
    # Everything right but the issuer: QEMU on the destination accepts its own certificate
    # (its CA file holds the rogue CA too) and still trusts the source's client certificate.
    (migrate_dir / "server-cert.pem").write_bytes(issued.cert_pem)
    (migrate_dir / "server-key.pem").write_bytes(issued.key_pem)
    (migrate_dir / "ca-cert.pem").write_bytes(saved["ca-cert.pem"] + rogue.cert_pem)
    try:
        task = migrate(api, traveller, to)
    finally:
        for name, data in saved.items():
            (migrate_dir / name).write_bytes(data)
    assert task["state"] == "failed"
    assert "certificate was refused" in task["error"], task["error"]
    running_on(api, traveller, host)


def test_destination_libvirtd_killed_mid_migration(
    api: httpx.Client, testbed: MultiHostTestbed, multihost_corral: CorralServer, traveller: str
) -> None:
    host, _ = where(api, traveller)
    to = "h2" if host != "h2" else "h3"
    destination = testbed.host(to)
    answer = api.post(f"/vms/{traveller}/migrate", json={"to": to, "bandwidth_mib_s": 8})
    task_id = answer.json()["id"]
    wait_until(
        lambda: (api.get(f"/tasks/{task_id}").json()["bytes_done"] or 0) > 0, 30, "first bytes"
    )
    testbed.kill_daemon(destination, "libvirtd")
    try:
        task = wait_task(api, task_id, 60)
    finally:
        testbed.start_daemon(destination, "libvirtd", "--listen")
    assert task["state"] == "failed"
    assert f"{host} lost its connection to the libvirt daemon of {to}" in task["error"]
    running_on(api, traveller, host)
    # Nothing is left on the destination once its libvirtd is back.
    uuid = api.get(f"/vms/{traveller}").json()["uuid"]
    wait_until(lambda: uuid not in _domain_uuids(testbed, to), 30, "destination clean")
    wait_until(
        lambda: api.get(f"/hosts/{to}").json()["status"] == "connected", 60, f"{to} reconnected"
    )


def test_corral_killed_mid_migration_is_reconciled(
    api: httpx.Client, multihost_corral: CorralServer, testbed: MultiHostTestbed, traveller: str
) -> None:
    host, _ = where(api, traveller)
    to = "h3" if host != "h3" else "h1"
    heartbeat = Heartbeat(api, testbed, traveller, to)
    answer = api.post(f"/vms/{traveller}/migrate", json={"to": to, "bandwidth_mib_s": 10})
    task_id = answer.json()["id"]
    wait_until(
        lambda: (api.get(f"/tasks/{task_id}").json()["bytes_done"] or 0) > 0, 30, "first bytes"
    )
    multihost_corral.kill()  # SIGKILL: no chance to clean up; the source's libvirtd goes on
    multihost_corral.start()
    task = wait_task(api, task_id, 120)
    assert task["state"] == "succeeded", task["error"]
    steps = [s["phase"] for s in task["result"]["migration"]["steps"]]
    assert steps == [
        "checking", "prepared", "migrating", "uncertain", "finishing", "completed",
    ]  # fmt: skip
    running_on(api, traveller, to)
    heartbeat.goes_on()
    for name in ("h1", "h2", "h3"):
        wait_until(
            lambda n=name: api.get(f"/hosts/{n}").json()["status"] == "connected",  # type: ignore[misc]
            60,
            f"{name} connected",
        )


# -- evacuation ------------------------------------------------------------------------------------
def test_evacuating_a_host_with_three_vms(
    api: httpx.Client, multihost_corral: CorralServer, kernel_guest: KernelGuest, traveller: str
) -> None:
    names = ["mig-e1", "mig-e2"]
    host, _ = where(api, traveller)
    for name in names:
        make_guest(api, kernel_guest, name, host)
    names.append(traveller)
    try:
        done = multihost_corral.cli("host", "evacuate", host, timeout=300)
        assert done.returncode == 0, done.stderr
        assert f"host {host} is empty and in maintenance" in done.stdout
        assert api.get("/vms", params={"host": host}).json()["items"] == []
        assert api.get(f"/hosts/{host}").json()["status"] == "maintenance"
        for name in names:
            moved_to, state = where(api, name)
            assert moved_to not in (host, "local") and state == "running", (name, moved_to)
    finally:
        api.put(f"/hosts/{host}/maintenance", json={"enabled": False})
        for name in names[:2]:
            remove_guest(api, name)


# -- insecure: only with the admin switch, and then the check sees plaintext ----------------------
def _reinstall(api: httpx.Client, host: str) -> None:
    answer = api.post(f"/hosts/{host}/rotate-certs", json={})
    assert answer.status_code == 202, answer.text
    assert wait_task(api, answer.json()["id"], 120)["state"] == "succeeded"
    wait_until(lambda: api.get(f"/hosts/{host}").json()["status"] == "connected", 60, host)


def test_insecure_with_the_admin_switch_puts_the_canary_on_the_wire(
    api: httpx.Client, testbed: MultiHostTestbed, traveller: str, tmp_path: Path
) -> None:
    host, _ = where(api, traveller)
    to = "h2" if host != "h2" else "h3"
    refused = api.post(f"/vms/{traveller}/migrate", json={"to": to, "transport": "insecure"})
    assert refused.status_code == 403
    assert api.patch("/cluster/settings", json={"allow_insecure_migration": True}).is_success
    try:
        # Allowed by Corral, still refused by hosts enrolled while it was off.
        task = migrate(api, traveller, to, transport="insecure")
        assert task["state"] == "failed" and "migrate_tls_force" in task["error"]
        for name in (host, to):
            _reinstall(api, name)
        heartbeat = Heartbeat(api, testbed, traveller, to)
        with capture(testbed, tmp_path / "plain.pcap") as pcap:
            task = migrate(api, traveller, to, transport="insecure")
        assert task["state"] == "succeeded", task["error"]
        assert canary_copies(pcap) > 1000  # the check sees plaintext when there is some
        running_on(api, traveller, to)
        heartbeat.goes_on()
    finally:
        api.patch("/cluster/settings", json={"allow_insecure_migration": False})
        for name in (host, to):
            _reinstall(api, name)  # back to migrate_tls_force = 1
    audit = api.get("/audit", params={"action": "vm.migrate.unencrypted"}).json()["items"]
    assert [e["outcome"] for e in audit[:3]] == ["ok", "ok", "denied"]
    qemu_conf = (testbed.host(to).etc_dirs[1] / "qemu.conf").read_text()
    assert "migrate_tls_force = 1" in qemu_conf


# -- storage ---------------------------------------------------------------------------------------
def test_storage_copy_moves_the_disk_over_tls(
    api: httpx.Client, kernel_guest: KernelGuest, testbed: MultiHostTestbed
) -> None:
    """A VM with a disk in Corral's pool (not shared between test-bed hosts): refused with
    storage shared, moved by the default (auto: h2 does not see the disk, so it is copied —
    NBD over the same TLS), the source's stale copy removed, so it can come back with storage
    copy."""
    name = "mig-disk"
    answer = api.post("/vms", json=kernel_vm(name, kernel_guest, disk_gib=1, host="h1"))
    assert answer.status_code == 201, answer.text
    assert api.post(f"/vms/{name}/start").status_code == 200
    try:
        wait_until(lambda: last_heartbeat(api, name) > 1, 90, f"{name}'s heartbeat")
        shared = api.post(f"/vms/{name}/migrate", json={"to": "h2", "storage": "shared"})
        assert shared.status_code == 409 and "storage copy" in shared.json()["detail"]
        task = migrate(api, name, "h2")
        assert task["state"] == "succeeded", task["error"]
        assert task["result"]["migration"]["request"]["storage"] == "copy"
        [path] = task["result"]["source_disks_removed"]
        running_on(api, name, "h2")
        pool = Path("lib") / "corral" / "images" / Path(path).name
        assert (testbed.host("h2").base / pool).exists()
        assert not (testbed.host("h1").base / pool).exists()
        back = migrate(api, name, "h1", storage="copy")
        assert back["state"] == "succeeded", back["error"]
        running_on(api, name, "h1")
    finally:
        api.post(f"/vms/{name}/stop")
        api.delete(f"/vms/{name}", params={"delete_disks": "true"})


def _pool_files(testbed: MultiHostTestbed, host: str) -> set[str]:
    """The files in Corral's pool on ``host`` (the harness's own look)."""
    return {p.name for p in (testbed.host(host).base / "lib" / "corral" / "images").iterdir()}


def test_a_cancelled_storage_copy_leaves_no_volume_and_a_move_leaves_no_serial_log(
    api: httpx.Client, kernel_guest: KernelGuest, testbed: MultiHostTestbed
) -> None:
    """Cancelling a storage copy deletes the disk libvirt had created on the destination (the
    next migration is accepted); a completed migration leaves no serial log on its source."""
    name = "mig-cancelled-copy"
    answer = api.post("/vms", json=kernel_vm(name, kernel_guest, disk_gib=1, host="h1"))
    assert answer.status_code == 201, answer.text
    assert api.post(f"/vms/{name}/start").status_code == 200
    try:
        wait_until(lambda: last_heartbeat(api, name) > 1, 90, f"{name}'s heartbeat")
        [disk] = [
            d["path"] for d in api.get(f"/vms/{name}").json()["disks"] if d["device"] == "disk"
        ]
        disk_file = Path(disk).name
        before = _pool_files(testbed, "h2")
        assert disk_file not in before
        started = api.post(
            f"/vms/{name}/migrate", json={"to": "h2", "storage": "copy", "bandwidth_mib_s": 1}
        )
        assert started.status_code == 202, started.text
        task_id = started.json()["id"]
        wait_until(lambda: disk_file in _pool_files(testbed, "h2"), 60, "the copy on h2")
        wait_until(
            lambda: (api.get(f"/tasks/{task_id}").json()["bytes_done"] or 0) > 0, 60, "bytes"
        )
        assert api.post(f"/tasks/{task_id}/cancel").status_code == 200
        task = wait_task(api, task_id)
        assert task["state"] == "cancelled", task
        assert _pool_files(testbed, "h2") == before
        assert task["result"]["migration"]["destination_volumes_removed"] == [disk]
        said = task["result"]["migration"]["error"]
        assert f"the disk copies it had made on h2 were deleted ({disk})" in said
        running_on(api, name, "h1")
        done = migrate(api, name, "h2", storage="copy")
        assert done["state"] == "succeeded", done["error"]
        running_on(api, name, "h2")
        assert f"{name}.serial.log" not in _pool_files(testbed, "h1")
        assert f"{name}.serial.log" in _pool_files(testbed, "h2")
    finally:
        api.post(f"/vms/{name}/stop")
        api.delete(f"/vms/{name}", params={"delete_disks": "true"})
