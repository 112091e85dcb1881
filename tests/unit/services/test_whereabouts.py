"""A VM moved outside Corral follows its domain by UUID (two libvirt test:/// drivers, each
with its own state, as hosts h1 and h2): the row moves on libvirt's events, a read never shows
the VM missing while another host has it, and no message advises deleting it."""

from __future__ import annotations

import asyncio
import time
import uuid as uuids
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from corral import store
from corral.config import Settings
from corral.errors import Conflict, NotFound
from corral.model.auth import Role
from corral.model.vm import DeleteRequest, VmState
from corral.services.principal import Principal
from corral.services.runtime import Services
from corral.services.whereabouts import Whereabouts, moved_to

NAME = "wanderer"
_DOMAIN = """<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
  <name>{name}</name><uuid>{uuid}</uuid><memory>131072</memory><os><type>hvm</type></os>
  <test:runstate>{state}</test:runstate>
</domain>"""
_RUNNING, _SHUTOFF = 1, 5


@pytest.mark.parametrize(
    ("here", "there", "moves"),
    [
        (None, VmState.RUNNING, True),  # gone from its host: wherever it is found
        (None, VmState.SHUTOFF, True),  # (an offline migration)
        (VmState.RUNNING, VmState.RUNNING, False),  # never on a guess
        (VmState.RUNNING, VmState.PAUSED, False),  # a migration's destination before the end
        (VmState.PAUSED, VmState.RUNNING, True),  # the source paused after the hand-over
        (VmState.SHUTOFF, VmState.RUNNING, True),  # a stale definition left on the source
        (VmState.SHUTOFF, VmState.SHUTOFF, False),
        (VmState.UNKNOWN, VmState.RUNNING, True),  # its host is down and it runs elsewhere
        (VmState.UNKNOWN, VmState.SHUTOFF, False),  # ... but only defined elsewhere
    ],
)
def test_which_domain_a_vm_follows(here: VmState | None, there: VmState, moves: bool) -> None:
    assert moved_to(here, there) is moves


def _node(path: Path, uuid: str, state: int | None) -> str:
    domain = "" if state is None else _DOMAIN.format(name=NAME, uuid=uuid, state=state)
    path.write_text(f"<node>{domain}</node>")
    return f"test://{path}"


@pytest_asyncio.fixture
async def services(tmp_path: Path) -> AsyncIterator[tuple[Services, str]]:
    """h1 runs the domain, h2 has the same UUID defined and shut off (both persistent, as a
    source and destination sharing storage would)."""
    uuid = str(uuids.uuid4())
    h1 = _node(tmp_path / "h1.xml", uuid, _RUNNING)
    h2 = _node(tmp_path / "h2.xml", uuid, _SHUTOFF)
    services = Services(
        # Event-driven only: a periodic reconcile would hide a missed event.
        Settings(
            data_dir=tmp_path,
            local_host_name="h1",
            local_host_uri=h1,
            pool_dir=str(tmp_path / "pool"),
            reconcile_interval_s=3600,
        )
    )
    services.db.sync(lambda s: store.add_host(s, "h1", h1))
    services.db.sync(lambda s: store.add_host(s, "h2", h2))
    await services.start()
    try:
        yield services, uuid
    finally:
        await services.stop()


async def _host_of(services: Services) -> str:
    return (await services.vms.inventory.row(NAME)).host.name


async def _until_on(services: Services, host: str, seen: list[VmState]) -> float:
    """Seconds until the row says ``host``, reading the VM (show and list) meanwhile."""
    started = time.monotonic()
    while time.monotonic() - started < 5:
        seen.append((await services.vms.inventory.get(NAME)).state)
        seen.extend(v.state for v in await services.vms.inventory.list_vms() if v.name == NAME)
        if await _host_of(services) == host:
            return time.monotonic() - started
        await asyncio.sleep(0.01)
    raise AssertionError(f"{NAME} did not move to {host}: {seen}")


async def test_the_row_follows_the_running_domain_on_libvirt_events(
    services: tuple[Services, str],
) -> None:
    corral, uuid = services
    h1, h2 = corral.hosts.get("h1"), corral.hosts.get("h2")
    assert await _host_of(corral) == "h1"  # adopted where it runs, not where it is defined
    # The same domain running on both: no guess, it stays.
    await h2.start(uuid)
    await corral.reconciler.follow(uuid)
    assert await _host_of(corral) == "h1"
    # Stopped on h1 while h2 runs it: h1's STOPPED event moves it, and says so.
    async with corral.bus.subscribe() as events:
        await h1.destroy(uuid)
        seen: list[VmState] = []
        assert await _until_on(corral, "h2", seen) < 2
        kinds = [events.get_nowait() for _ in range(events.qsize())]
    moved = [e.data for e in kinds if (e.topic, e.kind) == ("vm", "moved")]
    assert moved == [{"host": "h2", "from": "h1", "uuid": uuid, "name": NAME}]
    # Gone from h1 for good: no reconcile of h1 calls it missing, nor draws it back.
    await h1.undefine_domain(uuid)
    await corral.reconciler.reconcile_all()
    info = await corral.vms.inventory.get(NAME)
    assert (info.host, info.state) == ("h2", VmState.RUNNING)
    assert VmState.MISSING not in seen, seen
    assert corral.db.sync(lambda s: store.get_vm(s, NAME).missing_since) is None


@pytest.mark.parametrize("read", ["list", "host list", "show", "operation"])
async def test_a_read_finds_a_domain_undefined_from_its_host_elsewhere(
    services: tuple[Services, str], read: str
) -> None:
    """An offline move (defined on h2, undefined from h1) with no event for Corral to act on
    yet: list, show and every operation look on the other hosts before saying missing."""
    corral, uuid = services
    h1 = corral.hosts.get("h1")
    await h1.destroy(uuid)
    await corral.reconciler.stop()  # no event acts from here on
    await h1.undefine_domain(uuid)
    inventory = corral.vms.inventory
    if read == "list":
        [info] = [v for v in await inventory.list_vms() if v.name == NAME]
        assert (info.host, info.state) == ("h2", VmState.SHUTOFF)
    elif read == "host list":  # only h1's domains were listed: h2 is asked
        assert [v.name for v in await inventory.list_vms("h1")] == []
    elif read == "show":
        info = await inventory.get(NAME)
        assert (info.host, info.state) == ("h2", VmState.SHUTOFF)
    else:
        _row, host, record = await inventory.record(NAME)
        assert (host.name, record.uuid) == ("h2", uuid)
    assert await _host_of(corral) == "h2"


async def test_reads_racing_to_follow_one_move_both_show_it_where_it_is(
    services: tuple[Services, str],
) -> None:
    """Two reads (show and list, or two clients) that read the row before either moved it:
    the second finds it moved already and shows it on h2, never missing from h1; the move is
    announced once."""
    corral, uuid = services
    h1 = corral.hosts.get("h1")
    await h1.destroy(uuid)
    await corral.reconciler.stop()
    await h1.undefine_domain(uuid)
    stale = await corral.vms.inventory.row(NAME)
    where = Whereabouts(corral.db, corral.hosts, None, corral.bus)
    async with corral.bus.subscribe() as events:
        first = await where.follow(stale, None)
        second = await where.follow(stale, None)
        announced = [events.get_nowait() for _ in range(events.qsize())]
    assert first is not None and second is not None
    assert (first.row.host.name, second.row.host.name) == ("h2", "h2")
    assert second.to.record.uuid == uuid
    assert [e.kind for e in announced if e.topic == "vm"] == ["moved"]


async def test_a_domain_on_no_host_is_missing_and_nobody_is_told_to_delete_it(
    services: tuple[Services, str],
) -> None:
    corral, uuid = services
    await corral.hosts.get("h2").undefine_domain(uuid)
    h1 = corral.hosts.get("h1")
    await h1.destroy(uuid)
    await h1.undefine_domain(uuid)
    await corral.reconciler.reconcile_all()
    info = await corral.vms.inventory.get(NAME)
    assert (info.host, info.state) == ("h1", VmState.MISSING)
    assert corral.db.sync(lambda s: store.get_vm(s, NAME).missing_since) is not None
    with pytest.raises(NotFound) as gone:
        await corral.vms.inventory.record(NAME)
    message = gone.value.message
    assert "no connected host has its domain" in message and uuid in message
    assert "corral host list" in message
    assert "delete" not in message


async def test_deleting_a_vm_moved_outside_corral_acts_where_it_is(
    services: tuple[Services, str],
) -> None:
    """Not merely forgotten (the reconciler would adopt it again): refused while it runs on
    its new host, then undefined there."""
    corral, uuid = services
    h1, h2 = corral.hosts.get("h1"), corral.hosts.get("h2")
    await corral.reconciler.stop()  # only the delete looks
    await h2.start(uuid)
    await h1.destroy(uuid)
    await h1.undefine_domain(uuid)
    admin = Principal("root", Role.ADMIN)
    with pytest.raises(Conflict) as running:
        await corral.vms.delete.delete(admin, NAME, DeleteRequest())
    assert "is running" in running.value.message
    assert await _host_of(corral) == "h2"
    await h2.destroy(uuid)
    await corral.vms.delete.delete(admin, NAME, DeleteRequest())
    assert NAME not in {r.name for r in await h2.list_domains()}
    assert corral.db.sync(lambda s: store.find_vm_by_uuid(s, uuid)) is None
