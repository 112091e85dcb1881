"""The cluster view: each connected host's domains as runtime records, kept current by the
reconciler's passes and libvirt's events, read by placement instead of asking every host
(three simulated hosts on libvirt's test driver, each its own node description)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from corral import store
from corral.config import Settings
from corral.errors import NoHostFits
from corral.model.auth import Role
from corral.model.vm import VmInfo, VmSpec, VmState
from corral.services.principal import Principal
from corral.services.runtime import Services
from corral.testbed.simulated_hosts import SimulatedHost, write_hosts
from corral.virt import LibvirtHost

ADMIN = Principal("admin", Role.ADMIN)


@pytest_asyncio.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[Services, list[SimulatedHost]]]:
    sims = write_hosts(tmp_path / "nodes", 3, vms=5, cpus=8, memory_mib=16384, vm_memory_mib=6000)
    first = sims[0]
    services = Services(
        # Event-driven only: a periodic pass would hide a missed event.
        Settings(
            data_dir=tmp_path,
            local_host_name=first.name,
            local_host_uri=first.uri,
            pool_dir=str(tmp_path / "pool"),
            reconcile_interval_s=3600,
        )
    )
    for sim in sims:
        services.db.sync(lambda s, sim=sim: store.add_host(s, sim.name, sim.uri))
    await services.start()
    try:
        yield services, sims
    finally:
        await services.stop()


async def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 5
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within 5 s: {what}")
        await asyncio.sleep(0.01)


async def test_the_view_holds_what_libvirt_says_without_asking_it(
    cluster: tuple[Services, list[SimulatedHost]],
) -> None:
    corral, sims = cluster
    view = corral.view
    assert all(view.listed(s.name) for s in sims)
    listed = await corral.vms.inventory.list_vms()
    assert len(listed) == 5
    assert {v.uuid: v.state for v in listed} == view.states((v.uuid, v.host) for v in listed)
    records = view.host_records(sims[0].name)
    assert records is not None and {r.name for r in records.values()} == set(sims[0].vms)
    assert all(r.xml == "" for r in records.values())  # kept without their definitions
    vm = listed[0]
    assert view.where(vm.uuid) == [vm.host]
    assert view.state_of(vm.uuid, "no-such-host") is VmState.RUNNING  # found where it is
    assert view.state_of("00000000-0000-0000-0000-000000000000", vm.host) is VmState.MISSING


async def test_events_keep_the_view_current(
    cluster: tuple[Services, list[SimulatedHost]],
) -> None:
    corral, sims = cluster
    view = corral.view
    host = corral.hosts.get(sims[1].name)
    [uuid, *_] = view.host_records(host.name) or {}
    before = view.running_sum(host.name)
    assert before is not None and (before.domains, before.memory_mib) == (2, 12000)
    # Behind Corral's back (straight through the host's libvirt connection): events only.
    await host.destroy(uuid)
    await _until(lambda: view.state_of(uuid, host.name) is VmState.SHUTOFF, "stopped")
    after = view.running_sum(host.name)
    assert after is not None and (after.domains, after.vcpus, after.memory_mib) == (1, 1, 6000)
    await host.start(uuid)
    await _until(lambda: view.state_of(uuid, host.name) is VmState.RUNNING, "started")
    await host.destroy(uuid)
    await host.undefine_domain(uuid)
    await _until(lambda: view.where(uuid) == [], "undefined")
    assert view.state_of(uuid, host.name) is VmState.MISSING


async def test_placement_reads_the_view_not_every_host(
    cluster: tuple[Services, list[SimulatedHost]], monkeypatch: pytest.MonkeyPatch
) -> None:
    corral, sims = cluster
    # No event acts from here on (nor lists a host): what create reads must be enough.
    await corral.reconciler.stop()
    listings: list[str] = []
    real = LibvirtHost.list_domains

    async def counted(self: LibvirtHost) -> list[object]:
        listings.append(self.name)
        return await real(self)  # type: ignore[return-value]

    monkeypatch.setattr(LibvirtHost, "list_domains", counted)
    spec = VmSpec.model_validate(
        {"name": "placed", "vcpus": 4, "memory_mib": 8192, "disks": [{"size_gib": 1}]}
    )
    # The only host with room: the third runs one VM of 6000 MiB, the others two.
    assert await corral.power.placement.choose(spec, {}, {}) == sims[2].name
    assert listings == []
    made = await corral.vms.create.create(ADMIN, spec.model_copy(update={"start": True}))
    assert isinstance(made, VmInfo) and made.host == sims[2].name
    # What create read is in the view at once: the next decision counts it, no room is left.
    assert corral.view.state_of(made.uuid, made.host) is VmState.RUNNING
    with pytest.raises(NoHostFits):
        await corral.power.placement.choose(spec.model_copy(update={"name": "next"}), {}, {})
    assert listings == []


async def test_a_listing_does_not_undo_what_events_said_meanwhile(
    cluster: tuple[Services, list[SimulatedHost]],
) -> None:
    """A listing is as old as its start: a change reported while it ran stays."""
    corral, sims = cluster
    view = corral.view
    host = corral.hosts.get(sims[0].name)
    records = view.host_records(host.name) or {}
    uuid, record = next(iter(records.items()))
    listing = asyncio.create_task(view.list_host(host))
    await asyncio.sleep(0)  # the listing is in flight (in a worker thread)
    view.put(host.name, dataclasses.replace(record, state=VmState.PAUSED))
    assert [r.state for r in await listing if r.uuid == uuid] == [VmState.RUNNING]
    assert view.state_of(uuid, host.name) is VmState.PAUSED
