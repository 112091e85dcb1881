"""Pages of VMs (filtered, sorted, continued by cursor) and their counts.

Filters and sorts work on inventory rows and runtime records; only the VMs of the page become
``VmInfo``, so a page costs little more than the records it is chosen from.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from corral import store
from corral.model.cursor import (
    SortKey,
    decode_cursor,
    page_cursor,
    page_of,
    query_digest,
    refused,
)
from corral.model.page import DEFAULT_LIMIT, Page, VmSort, VmSummary
from corral.model.vm import VmInfo, VmState
from corral.services.vms.inventory import VmEntry, VmInventory, vm_info
from corral.store import Vm


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
    if field == "state":
        return (entry.state.value, entry.row.name)
    return _row_key(entry.row, field)


def _row_key(row: Vm, field: str) -> SortKey:
    if field == "created":
        return (row.created_at.isoformat(), row.name)
    if field == "host":
        return (row.host.name, row.name)
    return (row.name,)


def _store_mark(after: SortKey, field: str) -> tuple[str | datetime, ...]:
    """A cursor's key as the store compares it (a creation time as a datetime)."""
    if not all(isinstance(k, str) for k in after):
        raise refused("not a cursor Corral issued")
    if field != "created":
        return tuple(str(k) for k in after)
    try:
        return (datetime.fromisoformat(str(after[0])), str(after[1]))
    except ValueError:
        raise refused("not a cursor Corral issued") from None


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
        if query.state is None and query.arch is None and field != "state":
            chosen, last = await self._from_store(query, field, after)
        else:
            chosen, last = await self._in_memory(query, field, after)
        return Page[VmInfo](
            items=[_current(vm_info(*e), e) for e in chosen], next_cursor=page_cursor(digest, last)
        )

    async def _from_store(
        self, query: VmQuery, field: str, after: SortKey | None
    ) -> tuple[list[VmEntry], SortKey | None]:
        """Filters and order the inventory rows hold: the store reads one page (by the index),
        the cluster view gives those VMs' records. Costs the same at 10,000 VMs as at 100."""
        if query.host is not None:
            self._inventory.hosts.get(query.host)  # 404 for an unknown host
        mark = None if after is None else _store_mark(after, field)
        rows = await self._inventory.db.read(
            lambda s: store.page_vms(
                s,
                order=field,
                descending=query.sort.descending,
                after=mark,
                limit=query.limit + 1,
                host=query.host,
                name_prefix=query.name_prefix,
            )
        )
        page = rows[: query.limit]
        last = _row_key(page[-1], field) if len(rows) > query.limit else None
        keep_moved = query.host is None
        return await self._inventory.entries_of(page, keep_moved=keep_moved), last

    async def _in_memory(
        self, query: VmQuery, field: str, after: SortKey | None
    ) -> tuple[list[VmEntry], SortKey | None]:
        """Filters and orders on runtime state (state, architecture): every VM's record."""
        entries = [
            e for e in await self._inventory.entries(query.host, cached=True) if query.matches(e)
        ]
        return page_of(
            entries,
            lambda e: _key(e, field),
            descending=query.sort.descending,
            limit=query.limit,
            after=after,
        )

    async def summary(self) -> VmSummary:
        entries = await self._inventory.entries(cached=True)
        return VmSummary(
            total=len(entries),
            by_state=dict(sorted(Counter(e.state.value for e in entries).items())),
            by_host=dict(sorted(Counter(e.row.host.name for e in entries).items())),
        )
