"""Pages of tasks and of the audit log, continued by cursor, on SQLite and PostgreSQL: every
item once, newest first, even when many share a creation time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from corral.errors import InvalidRequest
from corral.model.cursor import encode_cursor, query_digest
from corral.model.page import Page
from corral.model.task import TaskInfo, TaskState
from corral.services._db import Db
from corral.services.audit import AuditService
from corral.services.events import EventBus
from corral.services.tasks import TaskService
from corral.store import (
    Store,
    Task,
    Vm,
    add_host,
    add_vm,
    create_task,
    list_vms,
    page_vms,
    update_task,
)
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


@pytest.mark.parametrize("order", ["name", "created", "host"])
@pytest.mark.parametrize("descending", [False, True])
def test_vm_pages_from_the_store_cover_every_vm_once(
    store: Store, order: str, descending: bool
) -> None:
    same = utcnow()
    with store.session() as s:
        add_host(s, "hb", "qemu:///system")
        add_host(s, "ha", "qemu+tls://ha/system")
        for n in range(7):
            vm = add_vm(s, uuid=str(uuid4()), name=f"p{n}", host="ha" if n % 2 else "hb",
                        created_by="a")  # fmt: skip
            vm.created_at = same + timedelta(seconds=n % 3)  # ties: the name breaks them
        add_vm(s, uuid=str(uuid4()), name="q_0%", host="ha", created_by="a")

    def key(vm: Vm) -> tuple[Any, ...]:
        at = vm.created_at
        return {"name": (vm.name,), "created": (at, vm.name), "host": (vm.host.name, vm.name)}[
            order
        ]

    seen: list[str] = []
    after = None
    for _ in range(10):
        with store.session() as s:
            rows = page_vms(s, order=order, descending=descending, after=after, limit=3,
                            name_prefix="p")  # fmt: skip
            names = [r.name for r in rows]
            after = key(rows[-1]) if rows else None
        seen += names
        if len(names) < 3:
            break
    with store.session() as s:
        expected = sorted(
            (v for v in list_vms(s) if v.name.startswith("p")), key=key, reverse=descending
        )
        assert seen == [v.name for v in expected]
        # LIKE's wildcards in a prefix are plain characters.
        for prefix in ("q_0%", "q_", "q"):
            rows = page_vms(s, order="name", descending=False, after=None, limit=9,
                            name_prefix=prefix)  # fmt: skip
            assert [v.name for v in rows] == ["q_0%"]
        assert page_vms(s, order="name", descending=False, after=None, limit=9,
                        name_prefix="q%") == []  # fmt: skip
