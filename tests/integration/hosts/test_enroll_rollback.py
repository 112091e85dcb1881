"""Enrollment that breaks half-way leaves the host exactly as it was and records nothing; the
next run succeeds. Driven in-process so a test hook can break things at a precise step."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from corral import store
from corral.config import Settings
from corral.errors import HostError
from corral.hostsetup.bundle import write_bundle
from corral.model.auth import Role
from corral.model.host import HostBundleRequest, HostCreate, HostEnroll, SshAccess
from corral.model.task import TaskInfo
from corral.services.principal import Principal
from corral.services.runtime import Services
from corral.testbed.multihost import MultiHostTestbed, TestbedHost, allocate_slot
from tests.conftest import LIBVIRT_CACHE

pytestmark = pytest.mark.integration

ADMIN = Principal("admin", Role.ADMIN)


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MultiHostTestbed]:
    slot, lock = allocate_slot()
    testbed = MultiHostTestbed(
        tmp_path_factory.mktemp("rollback-bed"), hosts=1, slot=slot, shared_cache=LIBVIRT_CACHE
    )
    try:
        testbed.up()
        yield testbed
    finally:
        testbed.down()
        lock.close()


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(
        data_dir=tmp_path,
        local_host_name="local",
        local_host_uri="test:///default",
        pool_dir=str(tmp_path / "pool"),
        reconcile_interval_s=3600,
    )
    svc = Services(settings)
    await svc.start()
    svc.enrollment.confirm_s = 4  # the host's wait for Corral's confirmation
    try:
        yield svc
    finally:
        await svc.stop()


def _snapshot(host: TestbedHost) -> dict[str, tuple[int, bytes]]:
    """Every file and directory of the host's /etc changes and /etc/libvirt, with modes."""
    files: dict[str, tuple[int, bytes]] = {}
    for root in host.etc_dirs:
        for path in sorted(root.rglob("*")):
            data = path.read_bytes() if path.is_file() else b""
            files[str(path)] = (path.lstat().st_mode, data)
    return files


def _request(bed: MultiHostTestbed) -> HostEnroll:
    host = bed.hosts[0]
    ssh = SshAccess(destination=host.ssh_destination, key_path=str(bed.ssh_key))
    return HostEnroll(name="rb1", address=host.address, ssh=ssh)


async def _finished(services: Services, task: TaskInfo) -> TaskInfo:
    for _ in range(600):
        task = await services.tasks.get(task.id)
        if task.state.finished:
            return task
        await asyncio.sleep(0.1)
    raise AssertionError(f"task {task.id} did not finish")


def _libvirtd_answers(host: TestbedHost) -> bool:
    done = subprocess.run(["virsh", "-c", host.unix_uri, "uri"], capture_output=True, timeout=10)
    return done.returncode == 0


async def _wait_restored(host: TestbedHost, before: dict[str, tuple[int, bytes]]) -> None:
    for _ in range(300):
        staging = host.base / "run" / "corral-enroll"
        if _snapshot(host) == before and not staging.exists() and _libvirtd_answers(host):
            return
        await asyncio.sleep(0.1)
    assert _snapshot(host) == before
    assert not (host.base / "run" / "corral-enroll").exists()


async def test_enrollment_that_fails_half_way_leaves_the_host_as_it_was(
    services: Services, bed: MultiHostTestbed
) -> None:
    host = bed.hosts[0]
    before = _snapshot(host)
    assert any(p.endswith("libvirtd.conf") for p in before)

    # 1. The check after libvirtd restarted with TLS fails: Corral tells the host to roll back.
    async def refuse(step: str) -> None:
        if step == "verifying":
            raise HostError("injected failure after the upload")

    services.enrollment.checkpoint = refuse
    task = await _finished(services, await services.enrollment.enroll(ADMIN, _request(bed)))
    assert task.state.value == "failed"
    assert "injected failure" in (task.error or "")
    assert "previous configuration was restored" in (task.error or "")
    await _wait_restored(host, before)
    assert services.db.sync(store.list_hosts)[-1].name == "local"

    # 2. SSH dies after libvirtd restarted (sshd and its sessions killed): nobody can tell
    # the host anything; it rolls back by itself when the confirmation does not come.
    async def kill_sshd(step: str) -> None:
        if step == "committing":
            bed.kill_daemon(host, "sshd")

    services.enrollment.checkpoint = kill_sshd
    task = await _finished(services, await services.enrollment.enroll(ADMIN, _request(bed)))
    assert task.state.value == "failed"
    assert "by itself" in (task.error or ""), task.error
    await _wait_restored(host, before)
    assert [h.name for h in services.db.sync(store.list_hosts)] == ["local"]

    # 3. Run again with sshd back: it succeeds.
    bed.start_daemon(host, "sshd")
    services.enrollment.checkpoint = _no_hook
    task = await _finished(services, await services.enrollment.enroll(ADMIN, _request(bed)))
    assert task.state.value == "succeeded", task.error
    info = await services.hosts.info("rb1")
    assert info.status.value == "connected" and info.uri.startswith("qemu+tls://")
    assert _snapshot(host) != before


async def _no_hook(_step: str) -> None:
    return None


async def test_a_bundle_installed_by_hand_then_added(
    services: Services, bed: MultiHostTestbed, tmp_path: Path
) -> None:
    host = bed.hosts[0]
    bundle = await services.enrollment.bundle(HostBundleRequest(name="rb2", address=host.address))
    directory = tmp_path / "bundle"
    write_bundle(directory, [(f.path, f.content.encode(), f.mode) for f in bundle.files])
    done = await asyncio.to_thread(
        subprocess.run, host.inside(["sh", str(directory / "install.sh")]),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "committed" in done.stdout
    assert not (host.base / "run" / "corral-enroll").exists()
    info = await services.hosts.add(HostCreate(name="rb2", uri=bundle.uri))
    assert info.status.value == "connected"
    assert info.enrolled and info.address == host.address
    assert len(info.certificates) == 5  # with the libvirt client certificate (peer-to-peer)
