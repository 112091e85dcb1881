"""Pre-flight refusals, case by case (pure: facts in, refusals out), and the error each one
becomes at the API."""

from __future__ import annotations

from dataclasses import replace

import pytest

from corral.errors import (
    Conflict,
    CorralError,
    InsufficientResources,
    NotFound,
)
from corral.model.host import HostCapabilities
from corral.model.migration import MigrationRequest, StorageMode
from corral.model.vm import Accelerator, VmState
from corral.services.migrations.preflight import (
    HostFacts,
    Refusal,
    VmFacts,
    raise_refusals,
    refusals,
    storage_plan,
)

POOL = "/var/lib/libvirt/corral/images"
DISK = f"{POOL}/web1-root.qcow2"


def _caps(free: int = 8192, arch: str = "x86_64", kvm: bool = False) -> HostCapabilities:
    return HostCapabilities(
        hostname="x",
        arch=arch,
        cpus=4,
        memory_mib=16384,
        free_memory_mib=free,
        accelerators=[Accelerator.KVM, Accelerator.TCG] if kvm else [Accelerator.TCG],
        libvirt_version="9.0.0",
    )


VM = VmFacts(
    name="web1",
    uuid="u1",
    state=VmState.RUNNING,
    memory_mib=2048,
    arch="x86_64",
    accelerator=Accelerator.TCG,
    networks=("corral-nat",),
    disks=(("vda", DISK, "disk"),),
)
H2 = HostFacts(
    name="h2",
    caps=_caps(),
    networks=frozenset({"corral-nat"}),
    visible_paths=frozenset({DISK}),
    pool_dirs=frozenset({POOL}),
)
REQUEST = MigrationRequest(to="h2")


def _check(
    vm: VmFacts = VM, dest: HostFacts = H2, request: MigrationRequest = REQUEST
) -> list[Refusal]:
    return refusals(vm, "h1", _caps(), dest, request)


def _raised(found: list[Refusal]) -> CorralError:
    with pytest.raises(CorralError) as caught:
        raise_refusals(found, "web1", "h2")
    return caught.value


def test_a_migration_that_can_work_has_no_refusal() -> None:
    assert _check() == []
    raise_refusals([], "web1", "h2")  # nothing raised


@pytest.mark.parametrize(
    ("vm", "dest", "error", "words"),
    [
        (replace(VM, state=VmState.SHUTOFF), H2, Conflict, "is shut off: live migration"),
        (replace(VM, state=VmState.CRASHED), H2, Conflict, "only a running or paused VM"),
        (VM, HostFacts(name="h9", known=False), NotFound, "unknown destination host 'h9'"),
        (VM, replace(H2, name="h1"), Conflict, "already runs on host h1"),
        (VM, replace(H2, maintenance=True), Conflict, "h2 is in maintenance"),
        (
            VM,
            HostFacts(name="h2", connected=False, last_error="connection refused"),
            Conflict,
            "h2 is not reachable (connection refused)",
        ),
        (
            VM,
            replace(H2, caps=_caps(free=1500)),
            InsufficientResources,
            "h2 has 1500 MiB free, VM web1 needs 2112 MiB",
        ),
        (
            VM,
            replace(H2, cpu_problem="Host CPU does not provide required features: avx512f"),
            Conflict,
            "cannot run VM web1's CPU model (Host CPU does not provide required features",
        ),
        (VM, replace(H2, caps=_caps(arch="aarch64")), Conflict, "h2 is aarch64, VM web1 is x86"),
        (
            replace(VM, accelerator=Accelerator.KVM),
            H2,
            Conflict,
            "runs on KVM and host h2 has no usable KVM",
        ),
        (VM, replace(H2, networks=frozenset()), Conflict, "lacks the network(s) corral-nat"),
        (
            VM,
            replace(H2, lacking_networks="the required network lan0"),
            Conflict,
            "host h2 lacks the required network lan0 (VM web1 needs it)",
        ),
        (VM, replace(H2, clashes=("web1 (u9)",)), Conflict, "clashes with VM web1: web1 (u9)"),
        (
            VM,
            replace(H2, transport_problems=("source host h1 was added by URI",)),
            Conflict,
            "source host h1 was added by URI",
        ),
    ],
)
def test_each_refusal(vm: VmFacts, dest: HostFacts, error: type[CorralError], words: str) -> None:
    found = _check(vm, dest)
    assert found, "expected a refusal"
    raised = _raised(found)
    assert type(raised) is error
    assert words in raised.message


def test_the_state_and_the_destination_come_before_everything_else() -> None:
    """A shut-off VM to a host in maintenance: those reasons, not a list of consequences
    (its memory, CPU, networks are not looked at)."""
    dest = replace(H2, maintenance=True, caps=_caps(free=1), networks=frozenset())
    found = _check(replace(VM, state=VmState.SHUTOFF), dest)
    assert [r.error for r in found] == [Conflict, Conflict]
    assert "shut off" in found[0].message and "maintenance" in found[1].message


def test_several_problems_are_all_named() -> None:
    dest = replace(H2, caps=_caps(free=100), networks=frozenset(), cpu_problem="no avx")
    raised = _raised(_check(VM, dest))
    assert isinstance(raised, InsufficientResources)  # the first problem's class
    assert raised.message.startswith("cannot migrate VM web1 to h2: ")
    for words in ("100 MiB free", "CPU model", "lacks the network"):
        assert words in raised.message


def test_storage_copy_needs_a_pool_there_and_no_volume_in_the_way() -> None:
    copy = MigrationRequest(to="h2", storage=StorageMode.COPY)
    assert _check(VM, replace(H2, visible_paths=frozenset()), copy) == []
    [no_pool] = _check(VM, replace(H2, visible_paths=frozenset(), pool_dirs=frozenset()), copy)
    assert "has no storage pool at /var/lib/libvirt/corral/images" in no_pool.message
    [in_the_way] = _check(VM, H2, copy)
    assert "already has /var/lib/libvirt/corral/images/web1-root.qcow2" in in_the_way.message
    assert "`corral volume delete h2 web1-root.qcow2`" in in_the_way.message


def test_a_cdrom_must_be_there_whatever_the_storage_mode() -> None:
    vm = replace(VM, disks=(("sda", "/srv/iso/d.iso", "cdrom"),))
    copy = MigrationRequest(to="h2", storage=StorageMode.COPY)
    [refusal] = _check(vm, H2, copy)
    assert "cdrom sda" in refusal.message and "eject it" in refusal.message


SHARED = MigrationRequest(to="h2", storage=StorageMode.SHARED)


def test_storage_shared_refuses_a_disk_the_destination_does_not_see() -> None:
    [refusal] = _check(VM, replace(H2, visible_paths=frozenset()), SHARED)
    assert (
        "disk vda of VM web1 (/var/lib/libvirt/corral/images/web1-root.qcow2) is not on host "
        "h2 (no shared storage at that path): ask for storage copy" in refusal.message
    )


SHARED_DISK = "/srv/shared/web1-data.qcow2"
ON_DOMAIN = replace(
    VM,
    disks=(("vda", DISK, "disk"), ("vdb", SHARED_DISK, "disk")),
    disk_domains={SHARED_DISK: "sd1"},
)


def test_auto_copies_only_what_the_destination_cannot_reach() -> None:
    """The local disk is copied, the one on a domain h2 reaches is not; a local disk h2 sees
    at its path (shared storage outside any domain) is not copied either."""
    dest = replace(H2, visible_paths=frozenset({SHARED_DISK}), reached_domains=frozenset({"sd1"}))
    assert _check(ON_DOMAIN, dest) == []
    assert storage_plan(ON_DOMAIN, dest, StorageMode.AUTO) == (
        StorageMode.COPY,
        (("vda", DISK),),
    )
    sees_all = replace(dest, visible_paths=frozenset({DISK, SHARED_DISK}))
    assert storage_plan(ON_DOMAIN, sees_all, StorageMode.AUTO) == (StorageMode.SHARED, ())
    # Forced: the local disk is copied even where a same path exists (refused: in the way),
    # the domain's never.
    assert storage_plan(ON_DOMAIN, sees_all, StorageMode.COPY) == (
        StorageMode.COPY,
        (("vda", DISK),),
    )


def test_a_destination_that_does_not_reach_the_domain_is_refused_with_the_reason() -> None:
    dest = replace(
        H2,
        visible_paths=frozenset({DISK}),
        domain_reasons={"sd1": "the marker file is not in /srv/shared here"},
    )
    for request in (REQUEST, SHARED, MigrationRequest(to="h2", storage=StorageMode.COPY)):
        found = [r for r in _check(ON_DOMAIN, dest, request) if "storage domain" in r.message]
        assert len(found) == 1, request
        assert (
            "disk vdb of VM web1 is on storage domain sd1, which host h2 does not reach (the "
            "marker file is not in /srv/shared here)" in found[0].message
        )
