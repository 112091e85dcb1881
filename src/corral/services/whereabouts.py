"""Where a VM is when it is not where the inventory says: VMs moved outside Corral.

libvirt knows a domain by its UUID on every host. ``virsh migrate --undefinesource`` or
virt-manager moves a VM without Corral, so before a row is called missing the other connected
hosts are asked, and a domain that lives elsewhere takes its row with it. A migration in flight
has the domain on both hosts, paused on the destination until it completes: the row moves only
once the destination runs it and its own host does not.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy.orm import Session

from corral import store
from corral.errors import CorralError, NotFound
from corral.model.vm import EXECUTING, VmState
from corral.services._db import Db
from corral.services.cluster_view import ClusterView
from corral.services.events import Event, EventBus
from corral.services.hosts import HostService
from corral.store import Vm
from corral.virt import DomainRecord, LibvirtHost

log = logging.getLogger(__name__)

_RUNS = EXECUTING


def moved_to(here: VmState | None, there: VmState) -> bool:
    """Whether the VM now lives on another host whose domain is ``there``, given its domain on
    the host of its row: ``here`` None when that host has no such domain any more,
    ``VmState.UNKNOWN`` when that host cannot be asked. A domain gone from its host lives
    wherever it is found; otherwise only a running domain draws the VM away from one that is
    not running (a stale definition left on the source, a source paused after the hand-over)."""
    if here is None:
        return True
    return there in _RUNS and here not in _RUNS


@dataclass(frozen=True)
class Sighting:
    host: LibvirtHost
    record: DomainRecord


@dataclass(frozen=True)
class Move:
    """A row that followed its domain: the row as it is now, the host it left, where it is."""

    row: Vm
    left: str
    to: Sighting


@dataclass(frozen=True)
class Search:
    """What the other hosts said: where the domain is, and which hosts could not be asked."""

    found: list[Sighting]
    unreachable: list[str]

    def pick(self, here: VmState | None) -> Sighting | None:
        """The one host the VM moved to; None when it did not move or the answer is not
        unique (one UUID running on two hosts is for a person to sort out, not a guess)."""
        homes = [s for s in self.found if moved_to(here, s.record.state)]
        running = [s for s in homes if s.record.state in _RUNS]
        candidates = running or homes
        if len(candidates) > 1:
            log.warning(
                "domain %s is on hosts %s: Corral leaves its VM where it is",
                candidates[0].record.uuid,
                ", ".join(s.host.name for s in candidates),
            )
            return None
        return candidates[0] if candidates else None


class Whereabouts:
    """Looks for domains by UUID across the connected hosts and moves their rows.

    With a cluster view, only the hosts that may have the domain are asked: those the view
    lists it on, those not listed yet, and those an event just named (``also``: the view may
    not have read that event's domain yet) — not every host of the cluster."""

    def __init__(
        self,
        db: Db,
        hosts: HostService,
        view: ClusterView | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self._db = db
        self._hosts = hosts
        self._view = view
        #: Every move is announced (``vm moved``), whichever read found it.
        self._bus = bus

    def _may_have(self, uuid: str, host: str, also: Collection[str]) -> bool:
        view = self._view
        if view is None or host in also:
            return True
        records = view.host_records(host)
        return records is None or uuid in records

    async def search(
        self, uuid: str, besides: str, *, also: Collection[str] = (), everywhere: bool = False
    ) -> Search:
        """Ask the hosts but ``besides`` that may have domain ``uuid`` (``everywhere``: every
        host, the view notwithstanding) for it."""
        found: list[Sighting] = []
        unreachable: list[str] = []
        for host in self._hosts.all():
            if host.name == besides:
                continue
            if not everywhere and not self._may_have(uuid, host.name, also):
                continue
            if not host.connected:
                unreachable.append(host.name)
                continue
            try:
                found.append(Sighting(host, await host.get_domain(uuid)))
            except NotFound:
                continue
            except CorralError as exc:
                log.info("looking for domain %s on host %s: %s", uuid, host.name, exc.message)
                unreachable.append(host.name)
        return Search(found, unreachable)

    async def follow(
        self,
        row: Vm,
        here: VmState | None,
        search: Search | None = None,
        *,
        also: Collection[str] = (),
    ) -> Move | None:
        """Move ``row`` to the host its domain lives on now, if that is another host (see
        :func:`moved_to` for ``here``; ``search``: what the hosts said, when just asked);
        None when it stays."""
        if search is None:
            search = await self.search(row.uuid, row.host.name, also=also)
        sighting = search.pick(here)
        if sighting is None:
            return None
        uuid, old, new = row.uuid, row.host.name, sighting.host.name

        def move(session: Session) -> tuple[Vm, bool] | None:
            """The row on ``new`` and whether this call moved it."""
            # By UUID: a rename through Corral meanwhile keeps the row.
            vm = store.find_vm_by_uuid(session, uuid)
            if vm is None:
                return None  # deleted through Corral meanwhile
            if vm.host.name == new:
                # Moved by another read that saw the same domain: a move is announced once,
                # but this read still shows the VM where it is (not missing from its old host).
                return vm, False
            if vm.host.name != old:
                return None
            store.update_vm(session, vm.name, host=new)
            return store.clear_vm_missing(session, vm.name), True

        result = await self._db(move)
        if result is None:
            return None
        moved, announce = result
        if not announce:
            return Move(moved, old, sighting)
        # Also seen for Corral's own migrations, a moment before their task records the move.
        log.info("VM %s (%s) follows its domain from host %s to host %s", moved.name, uuid,
                 old, new)  # fmt: skip
        if self._bus is not None:
            self._bus.publish(
                Event("vm", "moved", {"host": new, "from": old, "uuid": uuid, "name": moved.name})
            )
        return Move(moved, old, sighting)

    async def resolve(self, uuid: str, also: Collection[str] = ()) -> Move | None:
        """After a libvirt event about ``uuid`` (from hosts ``also``): move its row if the
        domain now lives on another host."""
        row = await self._db.read(lambda s: store.find_vm_by_uuid(s, uuid))
        if row is None:
            return None  # not in the inventory: the reconciler adopts it
        here = await self.state_on(row.host.name, uuid)
        if here in _RUNS:
            return None
        return await self.follow(row, here, also=also)

    async def state_on(self, host_name: str, uuid: str) -> VmState | None:
        """The domain's state on ``host_name``; None if it has no such domain, UNKNOWN when
        the host cannot be asked."""
        try:
            host = self._hosts.connected(host_name)
            return (await host.get_domain(uuid)).state
        except NotFound:
            return None
        except CorralError:
            return VmState.UNKNOWN
