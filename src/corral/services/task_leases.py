"""Task leases: renew those this instance holds, claim those whose holder went away.

Every second: extend the lease of each unfinished task this instance runs (one UPDATE), stop
the bodies of those it no longer holds (taken over while this process was stalled, or ended
by a user through another instance), then claim unfinished tasks whose lease ran out
(``SELECT … FOR UPDATE SKIP LOCKED``) and hand each to :meth:`TaskService.take_over`. With a
3 s lease a dead instance's tasks are taken over 3-4 s after its last renewal.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError

from corral import store
from corral.errors import CorralError
from corral.model.task import TaskInfo
from corral.services._background import BackgroundTask
from corral.services._db import Db
from corral.services.tasks import TaskService

log = logging.getLogger(__name__)

#: How often leases are renewed and expired ones claimed.
RENEW_S = 1.0


class TaskLeases:
    def __init__(self, db: Db, tasks: TaskService, every_s: float = RENEW_S) -> None:
        self._db = db
        self._tasks = tasks
        self._every_s = every_s
        self._loop = BackgroundTask("task-leases", self._run)
        self._taking_over: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        for pending in list(self._taking_over):
            pending.cancel()
        await asyncio.gather(*self._taking_over, return_exceptions=True)

    async def claim_all_at_start(self) -> list[TaskInfo]:
        """SQLite at start: every unfinished task is this process's (the database's lock
        file proves no other instance runs), resolved before Corral says it is ready."""
        tasks = self._tasks
        claimed = await self._db(
            lambda s: store.claim_tasks(s, tasks.owner, tasks.lease, limit=10_000, any_lease=True)
        )
        for task in claimed:
            await tasks.take_over(task)
        return claimed

    async def renew(self) -> None:
        tasks = self._tasks
        held = dict(tasks.held)
        kept = await self._db(lambda s: store.renew_task_leases(s, tasks.owner, held, tasks.lease))
        for task_id in held.keys() - kept:
            if task_id not in tasks.held:
                continue  # it finished here meanwhile
            row = await tasks.get(task_id)
            if row.owner == tasks.owner and not row.state.finished:
                continue  # claimed again by this instance in between
            tasks.lost(task_id, finished=row.state.finished)

    async def claim(self) -> list[TaskInfo]:
        """Claim expired tasks; each is taken over in the background (a resumer may talk to
        hosts for a while, and renewals must go on meanwhile)."""
        tasks = self._tasks
        claimed = await self._db(lambda s: store.claim_tasks(s, tasks.owner, tasks.lease))
        for task in claimed:
            tasks.held[task.id] = task.attempt
            taking = asyncio.create_task(tasks.take_over(task), name=f"take-over-{task.id}")
            self._taking_over.add(taking)
            taking.add_done_callback(self._taking_over.discard)
        return claimed

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            try:
                await self.renew()
                await self.claim()
            except (SQLAlchemyError, CorralError) as exc:  # a database outage must not end the loop
                log.warning("task leases: %s", exc)
