"""Pages of VMs (filtered, sorted, continued by cursor) and their counts.

Filters and sorts work on inventory rows and runtime records; only the VMs of the page become
``VmInfo``, so a page costs little more than the records it is chosen from.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from corral.model.cursor import SortKey, decode_cursor, page_cursor, page_of, query_digest
from corral.model.page import DEFAULT_LIMIT, Page, VmSort, VmSummary
from corral.model.vm import VmInfo, VmState
from corral.services.vms.inventory import VmEntry, VmInventory, vm_info


@dataclass(frozen=True)
class VmQuery:
    """What ``GET /vms`` asks for; None: no such filter."""

    host: str | None = None
    state: VmState | None = None
    name_prefix: str | None = None
    arch: str | None = None
    sort: VmSort = VmSort.NAME
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    def digest(self) -> str:
        return query_digest(
            "vms",
            host=self.host,
            state=self.state,
            name_prefix=self.name_prefix,
            arch=self.arch,
            sort=self.sort.value,
        )

    def matches(self, entry: VmEntry) -> bool:
        if self.state is not None and entry.state != self.state:
            return False
        if self.name_prefix is not None and not entry.row.name.startswith(self.name_prefix):
            return False
        arch = entry.record.arch if entry.record is not None else None
        return self.arch is None or arch == self.arch


def _key(entry: VmEntry, field: str) -> SortKey:
    name = entry.row.name
    if field == "created":
        return (entry.row.created_at.isoformat(), name)
    if field == "host":
        return (entry.row.host.name, name)
    if field == "state":
        return (entry.state.value, name)
    return (name,)


def _current(info: VmInfo, entry: VmEntry) -> VmInfo:
    """The uptime as of now: a record the cluster view holds says it as of its reading."""
    started = entry.row.started_at
    if info.uptime_s is None or started is None:
        return info
    return info.model_copy(
        update={"uptime_s": max(0.0, (datetime.now(UTC) - started).total_seconds())}
    )


class VmListing:
    """``GET /vms`` and ``GET /vms/summary``."""

    def __init__(self, inventory: VmInventory) -> None:
        self._inventory = inventory

    async def page(self, query: VmQuery) -> Page[VmInfo]:
        digest = query.digest()
        field = query.sort.field
        arity = 1 if field == "name" else 2
        # Refused before any work: a bad cursor costs nothing.
        after = None if query.cursor is None else decode_cursor(query.cursor, digest, arity)
        entries = [
            e for e in await self._inventory.entries(query.host, cached=True) if query.matches(e)
        ]
        chosen, last = page_of(
            entries,
            lambda e: _key(e, field),
            descending=query.sort.descending,
            limit=query.limit,
            after=after,
        )
        return Page[VmInfo](
            items=[_current(vm_info(*e), e) for e in chosen], next_cursor=page_cursor(digest, last)
        )

    async def summary(self) -> VmSummary:
        entries = await self._inventory.entries(cached=True)
        return VmSummary(
            total=len(entries),
            by_state=dict(sorted(Counter(e.state.value for e in entries).items())),
            by_host=dict(sorted(Counter(e.row.host.name for e in entries).items())),
        )
