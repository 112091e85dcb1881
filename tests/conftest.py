"""Shared fixtures: one private libvirtd per test session, the test guests, a real Corral server.

Integration tests never touch the system libvirtd: ``private_libvirtd`` runs its own daemon in
private mount and network namespaces (see ``corral.testbed.private_libvirtd``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from corral.testbed.arch_guests import build_arch_guest
from corral.testbed.cloud_guest import CloudGuest, build_cloud_guest
from corral.testbed.corral_server import CorralServer
from corral.testbed.enroll import enroll_all
from corral.testbed.guest_images import (
    DiskGuest,
    IsoGuest,
    KernelGuest,
    build_disk_guest,
    build_iso_guest,
    build_kernel_guest,
)
from corral.testbed.multihost import MultiHostTestbed, allocate_slot
from corral.testbed.private_libvirtd import PrivateLibvirtd
from corral.testbed.storage_server import StorageServer
from tests.postgres import PgAdmin, fresh_pg_database, pg_admin_url, pg_connect

REPO = Path(__file__).resolve().parents[1]
GUEST_BUILD_DIR = REPO / "build" / "guests"
#: libvirt's QEMU capabilities cache, shared by the test sessions' daemons: a fresh daemon
#: probes every emulator once (≈ 36 s with qemu-system-misc's 17 architectures, ≈ 4 s with
#: x86 alone); libvirt checks the cached results against the binaries itself.
LIBVIRT_CACHE = REPO / "build" / "libvirt-cache"


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[PgAdmin]:
    """A connection to the suite's PostgreSQL as a role that may create databases."""
    conn = pg_connect(pg_admin_url())
    yield conn
    conn.close()


@pytest.fixture
def pg_url(pg_admin: PgAdmin) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database (tests using it are marked ``postgres``)."""
    yield from fresh_pg_database(pg_admin)


#: Test directories whose tests share the session's real parts (the private libvirtd, the test
#: bed, the Corral servers, guests). Under pytest-xdist (`make test` runs two workers) one worker
#: runs all of them, in their usual order, while the others take the unit and contract tests,
#: which need none of it.
REAL_PARTS = frozenset({"e2e", "integration", "security", "setup"})


def _scope(nodeid: str) -> str:
    parts = nodeid.split("/", 2)
    return "real-parts" if len(parts) == 3 and parts[1] in REAL_PARTS else nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's own way (``--dist loadgroup`` with ``xdist_group`` marks) renames the tests'
    node ids, which pytest 9 no longer lets it do: the marks are silently ignored. A scheduler
    that groups by path does the same without them."""
    from xdist.scheduler import LoadScopeScheduling

    class RealPartsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

    return RealPartsTogether(config, log)


@pytest.fixture(scope="session")
def private_libvirtd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateLibvirtd]:
    daemon = PrivateLibvirtd(tmp_path_factory.mktemp("libvirtd"), shared_cache=LIBVIRT_CACHE)
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def kernel_guest() -> KernelGuest:
    return build_kernel_guest(GUEST_BUILD_DIR)


@pytest.fixture(scope="session")
def disk_guest() -> DiskGuest:
    return build_disk_guest(GUEST_BUILD_DIR)


@pytest.fixture(scope="session")
def iso_guest() -> IsoGuest:
    """A bootable ISO image of the busybox guest (ISOLINUX; ``corral.bootsrc=cdrom``)."""
    return build_iso_guest(GUEST_BUILD_DIR)


@pytest.fixture(scope="session")
def cloud_guest() -> CloudGuest:
    """Debian bookworm with cloud-init (mmdebstrap; NoCloud only), for direct kernel boot."""
    return build_cloud_guest(GUEST_BUILD_DIR)


@pytest.fixture(scope="session")
def s390x_guest() -> KernelGuest:
    """The busybox guest for s390x (heartbeat and shell on ttysclp0)."""
    return build_arch_guest("s390x", GUEST_BUILD_DIR)


@pytest.fixture(scope="session")
def aarch64_guest() -> KernelGuest:
    """The busybox guest for aarch64 (heartbeat and shell on ttyAMA0)."""
    return build_arch_guest("aarch64", GUEST_BUILD_DIR)


@pytest.fixture
def conn(private_libvirtd: PrivateLibvirtd) -> Iterator[libvirt.virConnect]:
    """A direct libvirt connection, for checks independent of Corral."""
    connection = libvirt.open(private_libvirtd.uri)
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def corral(
    private_libvirtd: PrivateLibvirtd, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CorralServer]:
    """A real ``corral serve`` process managing the private libvirtd (TCG forced)."""
    server = CorralServer(
        tmp_path_factory.mktemp("corral"),
        private_libvirtd.uri,
        # Reconcile only on events during tests, so tests prove that events drive it.
        extra_env={"CORRAL_RECONCILE_INTERVAL_S": "3600", "CORRAL_METRICS_INTERVAL_S": "1"},
        host_path_roots=[GUEST_BUILD_DIR],
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MultiHostTestbed]:
    """Three libvirt hosts h1-h3 in namespaces on a slot of their own (198.18.SLOT.0/24), each
    with libvirtd and sshd; not enrolled (see ``multihost_corral``). Each host also has a NIC
    on a second segment (``lan_nic``, named differently on each host) for bridge networks."""
    slot, lock = allocate_slot()
    bed = MultiHostTestbed(
        tmp_path_factory.mktemp("testbed"),
        hosts=3,
        slot=slot,
        shared_cache=LIBVIRT_CACHE,
        lan=True,
    )
    try:
        bed.up()
        yield bed
    finally:
        bed.down()
        lock.close()


@pytest.fixture(scope="session")
def storage_server(testbed: MultiHostTestbed) -> Iterator[StorageServer]:
    """NFS (nfs-ganesha: ``nfs://198.18.SLOT.200/export/…``, v3 and v4) and iSCSI (tgt: target
    ``storage_server.iqn`` with four 64 MiB file-backed LUNs and a fifth of 1 GiB, all sparse,
    for a disk much larger than a guest's RAM) in a namespace of their own on the test bed's
    bridge; the test-bed hosts reach them, the private libvirtd does not."""
    server = StorageServer.for_testbed(testbed, lun_sizes_mib=(64, 64, 64, 64, 1024))
    try:
        server.up()
        yield server
    finally:
        server.down()


@pytest.fixture(scope="session")
def multihost_corral(
    private_libvirtd: PrivateLibvirtd,
    testbed: MultiHostTestbed,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CorralServer]:
    """A real ``corral serve`` with h1-h3 enrolled over SSH (``POST /host-enrollments``), reached
    over qemu+tls; its local host is the private libvirtd. Migrations over ssh use the test
    bed's own ssh client wrapper (its key and known host keys). Utilisation is sampled every
    2 s from the VMs' CPU time (the namespace hosts share this machine's kernel, so node
    statistics would be the whole machine's)."""
    server = CorralServer(
        tmp_path_factory.mktemp("corral-multihost"),
        private_libvirtd.uri,
        extra_env={
            "CORRAL_RECONCILE_INTERVAL_S": "3600",
            "CORRAL_MIGRATION_TRANSPORTS": json.dumps(testbed.migration_transport_options()),
            "CORRAL_POWER_SAMPLE_INTERVAL_S": "2",
            "CORRAL_POWER_CPU_SOURCE": "domains",
            "CORRAL_METRICS_INTERVAL_S": "1",
            # HA: a host without storage kills its QEMUs after 10 s (the default 20 s is for
            # real storage hiccups); leases expire 15 s after its heartbeat stops.
            "CORRAL_HA_SELF_FENCE_AFTER_S": "10",
        },
        # Paths on remote hosts are compared without resolving links, and the guests' paths
        # are resolved ones (a worktree's build/guests links to another checkout's).
        host_path_roots=[GUEST_BUILD_DIR.resolve()],
    )
    server.start()
    try:
        with server.client() as client:
            enroll_all(client, testbed)
        yield server
    finally:
        server.stop()
