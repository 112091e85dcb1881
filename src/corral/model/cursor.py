"""Opaque page cursors, and paging a list that is sorted in memory.

A cursor says where the next page starts: the sort key of the last item given, and a digest of
the query (its filters and sort) it belongs to. A cursor handed to another query, or one Corral
did not issue (edited, truncated), is refused with ``InvalidRequest`` (422) rather than giving a
page that silently skips or repeats items. The checksum is not a signature: a caller who forges
a well-formed cursor only names a position it could have reached by paging.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from corral.errors import InvalidRequest

#: A sort key: strings and integers, compared element by element.
SortKey = tuple[str | int, ...]

X = TypeVar("X")

_CHECK_BYTES = 8


def query_digest(resource: str, **params: object) -> str:
    """A short digest of one query's filters and sort (``None`` values count as absent)."""
    shown = {k: str(v) for k, v in sorted(params.items()) if v is not None}
    text = json.dumps([resource, shown], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check(payload: bytes) -> bytes:
    return hashlib.sha256(b"corral-cursor\0" + payload).digest()[:_CHECK_BYTES]


def encode_cursor(digest: str, key: SortKey) -> str:
    payload = json.dumps([digest, list(key)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload + _check(payload)).decode().rstrip("=")


def _refused(why: str) -> InvalidRequest:
    return InvalidRequest(f"cursor: {why}; start again without a cursor")


def decode_cursor(cursor: str, digest: str, arity: int) -> SortKey:
    """The sort key in ``cursor``; InvalidRequest if it was not issued for this query."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise _refused("not a cursor Corral issued") from None
    payload, check = raw[:-_CHECK_BYTES], raw[-_CHECK_BYTES:]
    if len(raw) <= _CHECK_BYTES or _check(payload) != check:
        raise _refused("not a cursor Corral issued (edited or cut short?)")
    try:
        issued_for, key = json.loads(payload)
    except (ValueError, TypeError):
        raise _refused("not a cursor Corral issued") from None
    if issued_for != digest:
        raise _refused("it belongs to another query (other filters or sort)")
    if (
        not isinstance(key, list)
        or len(key) != arity
        or not all(isinstance(k, str | int) and not isinstance(k, bool) for k in key)
    ):
        raise _refused("not a cursor Corral issued")
    return tuple(key)


def page_of(
    items: Sequence[X],
    key: Callable[[X], SortKey],
    *,
    descending: bool,
    limit: int,
    after: SortKey | None,
) -> tuple[list[X], SortKey | None]:
    """Items sorted by ``key`` (unique per item), those past ``after``, at most ``limit`` of
    them; and the key to continue from, None on the last page."""
    keyed = sorted(((key(i), i) for i in items), key=lambda p: p[0], reverse=descending)
    if after is not None:
        mark = after
        try:
            keyed = [p for p in keyed if (p[0] < mark if descending else p[0] > mark)]
        except TypeError:  # a key of another type than this sort's, e.g. int against str
            raise _refused("not a cursor Corral issued") from None
    page = keyed[:limit]
    more = len(keyed) > limit
    return [p[1] for p in page], (page[-1][0] if more else None)


def page_cursor(digest: str, last: SortKey | None) -> str | None:
    return None if last is None else encode_cursor(digest, last)


def after_of(cursor: str | None, digest: str, arity: int) -> SortKey | None:
    """The key ``cursor`` continues from (None without one); InvalidRequest if it is not this
    query's."""
    return None if cursor is None else decode_cursor(cursor, digest, arity)


def rest_of(
    rows: list[X], limit: int, key: Callable[[X], SortKey]
) -> tuple[list[X], SortKey | None]:
    """A page from ``limit + 1`` rows fetched in order: the first ``limit``, and the key to
    continue from when there was one more."""
    page = rows[:limit]
    return page, (key(page[-1]) if len(rows) > limit and page else None)


def refused(why: str) -> InvalidRequest:
    """A cursor whose key does not fit its query (it decoded, but names no possible item)."""
    return _refused(why)
