"""Pages of a list: ``{"items": [...], "next_cursor": ...}``, the shape every list route answers,
and the counts the dashboard shows instead of every VM."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from corral.model.cursor import SortKey, after_of, page_cursor, page_of

T = TypeVar("T")

#: How many items a page holds unless asked, and at most.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class Page(BaseModel, Generic[T]):
    """One page of a list. ``next_cursor``: pass it as ``cursor`` with the same filters and
    sort for the next page; null on the last one."""

    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="opaque; null when this is the last page"
    )


class VmSort(StrEnum):
    """Orders of ``GET /vms`` (a leading ``-``: descending). Ties go by name, in the same
    direction."""

    NAME = "name"
    NAME_DESC = "-name"
    CREATED = "created"
    CREATED_DESC = "-created"
    HOST = "host"
    HOST_DESC = "-host"
    STATE = "state"
    STATE_DESC = "-state"

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")

    @property
    def field(self) -> str:
        return self.value.lstrip("-")


class VmSummary(BaseModel):
    """How many VMs there are, by runtime state and by host (hosts without VMs are absent)."""

    total: int
    by_state: dict[str, int]
    by_host: dict[str, int]


def paged(
    items: Sequence[T],
    key: Callable[[T], SortKey],
    *,
    digest: str,
    limit: int,
    cursor: str | None,
    arity: int = 1,
    descending: bool = False,
) -> Page[T]:
    """A page of a list held in memory (hosts, images, networks…), sorted by ``key``."""
    after = after_of(cursor, digest, arity)
    chosen, last = page_of(items, key, descending=descending, limit=limit, after=after)
    return Page[T](items=chosen, next_cursor=page_cursor(digest, last))
