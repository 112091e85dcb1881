"""Pages of tasks and of the audit log, continued by cursor, on SQLite and PostgreSQL: every
item once, newest first, even when many share a creation time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from corral.errors import InvalidRequest
from corral.model.cursor import encode_cursor, query_digest
from corral.model.page import Page
from corral.model.task import TaskInfo, TaskState
from corral.services._db import Db
from corral.services.audit import AuditService
from corral.services.events import EventBus
from corral.services.tasks import TaskService
from corral.store import Store, Task, create_task, update_task
from corral.store.coltypes import utcnow

Fetch = Callable[[int, str | None], Awaitable[Page[Any]]]


def _every_page(fetch: Fetch, limit: int) -> list[str]:
    async def run() -> list[str]:
        seen: list[str] = []
        cursor = None
        for _ in range(50):
            page = await fetch(limit, cursor)
            assert len(page.items) <= limit
            seen += [str(i.id) for i in page.items]
            cursor = page.next_cursor
            if cursor is None:
                return seen
        raise AssertionError("the cursors never ended")

    return asyncio.run(run())


def test_task_pages_newest_first_through_equal_times(store: Store) -> None:
    same = utcnow()
    with store.session() as s:
        ids = [
            create_task(s, kind="vm.create", target=f"t{i}", created_by="a").id for i in range(7)
        ]
        for n, task_id in enumerate(ids):
            # Three share one instant: the id breaks the tie.
            s.get(Task, task_id).created_at = same if n < 3 else same + timedelta(seconds=n)  # type: ignore[union-attr]
        other = create_task(s, kind="image.upload", target="x", created_by="a").id
        update_task(s, other, state=TaskState.RUNNING)
    tasks = TaskService(Db(store), EventBus())

    def everything(limit: int, cursor: str | None) -> Awaitable[Page[TaskInfo]]:
        return tasks.page(None, "vm.create", limit, cursor)

    seen = _every_page(everything, 2)
    expected = sorted(ids[3:], reverse=True, key=lambda i: ids.index(i)) + sorted(
        ids[:3], reverse=True
    )
    assert seen == expected
    running = _every_page(
        lambda limit, cursor: tasks.page(TaskState.RUNNING, None, limit, cursor), 5
    )
    assert running == [other]
    first = asyncio.run(tasks.page(None, "vm.create", 2, None))
    with pytest.raises(InvalidRequest, match="another query"):
        asyncio.run(tasks.page(TaskState.RUNNING, "vm.create", 2, first.next_cursor))
    forged = encode_cursor(query_digest("tasks", kind="vm.create"), ("yesterday", "x"))
    with pytest.raises(InvalidRequest, match="not a cursor Corral issued"):
        asyncio.run(tasks.page(None, "vm.create", 2, forged))


def test_audit_pages_newest_first(store: Store) -> None:
    audit = AuditService(Db(store))

    async def fill() -> None:
        for n in range(9):
            await audit.record("alice" if n % 3 else "bob", "vm.start", f"vm{n}", "ok")

    asyncio.run(fill())
    every = _every_page(lambda limit, cursor: audit.page(limit, None, None, cursor), 4)
    assert every == sorted(every, key=int, reverse=True) and len(every) == 9
    alices = _every_page(lambda limit, cursor: audit.page(limit, "alice", None, cursor), 2)
    assert len(alices) == 6
    forged = encode_cursor(query_digest("audit"), ("nine",))
    with pytest.raises(InvalidRequest, match="not a cursor Corral issued"):
        asyncio.run(audit.page(3, None, None, forged))
