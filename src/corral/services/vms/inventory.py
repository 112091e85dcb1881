"""Finding VMs and showing them: inventory rows joined with libvirt's runtime records."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import NamedTuple

from corral import store
from corral.errors import CorralError, NotFound
from corral.metrics import VMS_BY_STATE
from corral.model.vm import EXECUTING, VmInfo, VmState
from corral.services._db import Db
from corral.services.cluster_view import ClusterView
from corral.services.events import EventBus
from corral.services.hosts import HostService
from corral.services.whereabouts import Search, Sighting, Whereabouts
from corral.store import Vm
from corral.virt import DomainRecord, LibvirtHost

log = logging.getLogger(__name__)


def _uptime(row: Vm, record: DomainRecord) -> float | None:
    """libvirt has no uptime: virt knows it for starts it saw; the row remembers starts seen
    before a manager restart."""
    if record.uptime_s is not None:
        return record.uptime_s
    if row.started_at is None or record.state in (VmState.SHUTOFF, VmState.CRASHED):
        return None
    return max(0.0, (datetime.now(UTC) - row.started_at).total_seconds())


def vm_info(row: Vm, record: DomainRecord | None, host_connected: bool) -> VmInfo:
    """Inventory (row) + runtime (record). No record: ``missing`` if the host answered,
    ``unknown`` if the host is unreachable."""
    if record is None:
        state = VmState.MISSING if host_connected else VmState.UNKNOWN
        return VmInfo(
            uuid=row.uuid,
            name=row.name,
            host=row.host.name,
            state=state,
            vcpus=0,
            memory_mib=0,
            description=row.description,
            adopted=row.adopted,
            created_at=row.created_at,
            ha_priority=row.ha_priority,
        )
    return VmInfo(
        uuid=row.uuid,
        name=row.name,
        host=row.host.name,
        state=record.state,
        vcpus=record.vcpus,
        memory_mib=record.memory_mib,
        max_vcpus=record.max_vcpus,
        max_memory_mib=record.max_memory_mib,
        arch=record.arch,
        machine=record.machine,
        cpu=record.cpu,
        next_start=record.next_start,
        uptime_s=_uptime(row, record),
        cpu_time_s=record.cpu_time_s,
        description=record.description,
        accelerator=record.accelerator,
        adopted=row.adopted,
        disks=record.disks,
        nics=record.nics,
        created_at=row.created_at,
        ha_priority=row.ha_priority,
    )


class VmEntry(NamedTuple):
    """One VM as a listing sees it: its row, its domain (None if no connected host has it) and
    whether its host answered."""

    row: Vm
    record: DomainRecord | None
    connected: bool

    @property
    def state(self) -> VmState:
        if self.record is None:
            return VmState.MISSING if self.connected else VmState.UNKNOWN
        return self.record.state


def _count_states(entries: list[VmEntry]) -> None:
    counts = Counter(e.state for e in entries)
    for state in VmState:
        VMS_BY_STATE.labels(state.value).set(counts.get(state, 0))


class VmInventory:
    """Lookups every VM use case starts with, and the read-only views (list, show)."""

    def __init__(
        self,
        db: Db,
        hosts: HostService,
        view: ClusterView | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self.db = db
        self.hosts = hosts
        #: Told what each lookup reads from libvirt, so decisions after it see it at once.
        self.view = view or ClusterView(hosts)
        self._where = Whereabouts(db, hosts, self.view, bus)

    async def row(self, name: str) -> Vm:
        return await self.db.read(lambda s: store.get_vm(s, name))

    async def locate(self, name: str) -> tuple[Vm, LibvirtHost]:
        row = await self.row(name)
        return row, self.hosts.connected(row.host.name)

    async def found(self, name: str) -> tuple[Vm, LibvirtHost, DomainRecord | None]:
        """The VM and its domain where it is now (followed when it moved outside Corral); no
        record when no connected host has it."""
        row, host = await self.locate(name)
        try:
            return row, host, await self._read(host, row.uuid)
        except NotFound:
            pass
        # Moved outside Corral (virsh migrate, virt-manager): follow it.
        moved = await self._where.follow(row, None)
        if moved is not None:
            return moved.row, moved.to.host, moved.to.record
        return row, host, None

    async def record(self, name: str) -> tuple[Vm, LibvirtHost, DomainRecord]:
        row, host, record = await self.found(name)
        if record is not None:
            return row, host, record
        # Before saying it is nowhere: every host, whatever the view says.
        search = await self._where.search(row.uuid, host.name, everywhere=True)
        unreachable = ""
        if search.unreachable:
            unreachable = (
                f"; host(s) {', '.join(search.unreachable)} could not be asked and may have it"
            )
        # Never advise deleting it: the VM may well run on a host Corral cannot see.
        raise NotFound(
            f"VM {name!r} is in the inventory, but no connected host has its domain (UUID "
            f"{row.uuid}), not even host {host.name!r} it was on{unreachable}: check "
            "`corral host list` for hosts that are down or not enrolled, and whether someone "
            "undefined it or moved it to a host Corral does not manage"
        )

    async def get(self, name: str) -> VmInfo:
        row = await self.row(name)
        host = self.hosts.get(row.host.name)
        record = None
        if host.connected:
            try:
                record = await self._read(host, row.uuid)
            except NotFound:
                moved = await self._where.follow(row, None)
                if moved is not None:
                    return vm_info(moved.row, moved.to.record, True)
            else:
                if record.state not in EXECUTING:
                    # The source of a migration made outside Corral, stopped before libvirt
                    # undefines it: the running domain elsewhere is the VM, not this one.
                    moved = await self._where.follow(row, record.state)
                    if moved is not None:
                        return vm_info(moved.row, moved.to.record, True)
        return vm_info(row, record, host.connected)

    async def list_vms(self, host_name: str | None = None) -> list[VmInfo]:
        """Every VM (on ``host_name``), by name: for use cases that need them all. The API
        pages instead (``VmListing``)."""
        return [vm_info(*entry) for entry in await self.entries(host_name)]

    async def entries(self, host_name: str | None = None, *, cached: bool = False) -> list[VmEntry]:
        """Every VM's inventory row with its runtime record, by name; VMs that moved outside
        Corral followed. Cheap per VM: no VmInfo is built. ``cached``: the records as the
        cluster view holds them (pages and counts), else listed from libvirt now."""
        if host_name is not None:
            self.hosts.get(host_name)
        rows = await self.db.read(lambda s: store.list_vms(s, host=host_name))
        records = await self._records(host_name, cached)
        every = host_name is None
        result = await self._joined(rows, records, keep_moved=every, every_host=every)
        if host_name is None:
            _count_states(result)
        return result

    async def entries_of(self, rows: list[Vm], *, keep_moved: bool) -> list[VmEntry]:
        """``rows`` (a page of them) with their records as the cluster view holds them: only
        their hosts are looked at. ``keep_moved``: a VM that moved to another host stays
        (else it is left out, as in a listing of one host)."""
        records: dict[str, Mapping[str, DomainRecord]] = {}
        for name in {row.host.name for row in rows}:
            try:
                known = await self.view.ensure_listed(name)
            except NotFound:
                known = None
            if known is not None:
                records[name] = known
        return await self._joined(rows, records, keep_moved=keep_moved, every_host=False)

    async def _joined(
        self,
        rows: list[Vm],
        records: dict[str, Mapping[str, DomainRecord]],
        *,
        keep_moved: bool,
        every_host: bool,
    ) -> list[VmEntry]:
        """Rows with their records; ``every_host``: ``records`` hold every connected host, so
        a VM gone from its host need not be searched for on them again."""
        result = []
        for row in rows:
            found = records.get(row.host.name)
            record = (found or {}).get(row.uuid)
            if record is not None and record.state not in EXECUTING and self._elsewhere(row):
                # A stopped source of a migration outside Corral, the VM running elsewhere.
                seen = self._seen(row.uuid, records) if every_host else None
                moved = await self._where.follow(row, record.state, seen)
                if moved is not None:
                    if keep_moved:
                        result.append(VmEntry(moved.row, moved.to.record, True))
                    continue
            if found is not None and record is None:
                # Gone from its host: moved outside Corral, or missing.
                seen = self._seen(row.uuid, records) if every_host else None
                moved = await self._where.follow(row, None, seen)
                if moved is not None:
                    if keep_moved:
                        result.append(VmEntry(moved.row, moved.to.record, True))
                    continue
            result.append(VmEntry(row, record, found is not None))
        return result

    async def _read(self, host: LibvirtHost, uuid: str) -> DomainRecord:
        """Domain ``uuid`` on ``host`` from libvirt, and into the cluster view."""
        try:
            record = await host.get_domain(uuid)
        except NotFound:
            self.view.remove(host.name, uuid)
            raise
        self.view.put(host.name, record)
        return record

    async def _records(
        self, host_name: str | None, cached: bool
    ) -> dict[str, Mapping[str, DomainRecord]]:
        """The domains of each connected host (or only ``host_name``), by UUID: from the
        cluster view when ``cached`` (listing a host only when the view has not yet), else
        listed from libvirt now (and into the view)."""
        records: dict[str, Mapping[str, DomainRecord]] = {}
        for host in self.hosts.all():
            if not host.connected or (host_name is not None and host.name != host_name):
                continue
            if cached:
                known = await self.view.ensure_listed(host.name)
                if known is not None:
                    records[host.name] = known
                continue
            try:
                records[host.name] = {r.uuid: r for r in await self.view.list_host(host)}
            except CorralError as exc:
                log.warning("listing domains of %s failed: %s", host.name, exc.message)
        return records

    def _elsewhere(self, row: Vm) -> bool:
        """Whether the cluster view knows domain ``row.uuid`` on a host besides the row's
        (no libvirt call: a page of shut-off VMs must not ask every host about each)."""
        return any(h != row.host.name for h in self.view.where(row.uuid))

    def _seen(self, uuid: str, records: dict[str, Mapping[str, DomainRecord]]) -> Search | None:
        """Where a listing of every host found ``uuid`` (None when only one host was listed):
        the hosts were asked just now, no need to ask them again."""
        if len(records) < 2:
            return None
        found = [Sighting(self.hosts.get(h), on[uuid]) for h, on in records.items() if uuid in on]
        return Search(found, [])
