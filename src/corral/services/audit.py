"""The audit log: every mutating call records who did what to which object, and how it ended."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from corral import store
from corral.errors import CorralError, DatabaseUnavailable
from corral.model.auth import AuditEntry
from corral.model.cursor import after_of, page_cursor, query_digest, refused, rest_of
from corral.model.page import Page
from corral.services._db import Db

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How often an audit entry for finished work tries again while the database is away.
_RETRY_S = 1.0


def printable(text: str) -> str:
    """``text`` with every character that is not printable escaped (``\\n``, ``\\x00``,
    ``\\u202e``): a user name, a target or a message someone sent cannot forge a line of the
    log, hide text or reach the database as NUL."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return (
        repr(ch)[1:-1] if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    )


class AuditService:
    def __init__(self, db: Db) -> None:
        self._db = db

    async def record(
        self, user: str, action: str, target: str, outcome: str, detail: str = ""
    ) -> None:
        user, action, target = printable(user), printable(action), printable(target)
        outcome, detail = printable(outcome), printable(detail)
        await self._db(
            lambda s: store.append_audit(
                s, user=user, action=action, target=target, outcome=outcome, detail=detail
            )
        )
        log.info("audit user=%s action=%s target=%s outcome=%s", user, action, target, outcome)

    async def outcome(
        self, user: str, action: str, target: str, op: Callable[[], Awaitable[T]]
    ) -> T:
        """Run ``op`` and audit how it ended: for work done inside a task (the API middleware
        audits the request that started it)."""
        try:
            result = await op()
        except CorralError as exc:
            await self._record_once_stored(user, action, target, f"error: {exc.message}")
            raise
        await self._record_once_stored(user, action, target, "ok")
        return result

    async def _record_once_stored(self, user: str, action: str, target: str, outcome: str) -> None:
        # The work is done: with the database away, its entry waits for it to come back (the
        # task waits with it, and is cancelled if another instance takes it over meanwhile)
        # rather than failing work that succeeded.
        while True:
            try:
                await self.record(user, action, target, outcome)
                return
            except DatabaseUnavailable as exc:
                log.warning("audit entry for %s %s waits for the database: %s", action, target, exc)
                await asyncio.sleep(_RETRY_S)

    async def list_entries(
        self, limit: int = 100, user: str | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        return await self._db(lambda s: store.list_audit(s, limit=limit, user=user, action=action))

    async def page(
        self, limit: int, user: str | None, action: str | None, cursor: str | None
    ) -> Page[AuditEntry]:
        """Newest first, continued by cursor."""
        digest = query_digest("audit", user=user, action=action)
        after = after_of(cursor, digest, 1)
        if after is not None and not isinstance(after[0], int):
            raise refused("not a cursor Corral issued")
        before = None if after is None else int(after[0])
        rows = await self._db(
            lambda s: store.list_audit(s, limit + 1, user, action, before_id=before)
        )
        chosen, last = rest_of(rows, limit, lambda e: (e.id,))
        return Page[AuditEntry](items=chosen, next_cursor=page_cursor(digest, last))
