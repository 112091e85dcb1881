"""Task leases: renew those this instance holds, claim those whose holder went away.

Every second: extend the lease of each unfinished task this instance runs (one UPDATE), stop
the bodies of those it no longer holds (taken over while this process was stalled, or ended
by a user through another instance); and, in a loop of its own, claim unfinished tasks whose
lease ran out (``SELECT … FOR UPDATE SKIP LOCKED``) and hand each to
:meth:`TaskService.take_over`. With a 3 s lease a dead instance's tasks are taken over 3-4 s
after its last renewal.

Renewals run in a thread of their own, paced by the clock (not a sleep after the previous
round), so no other work of the process delays them: short database and libvirt calls share
asyncio's default pool of threads, and a loaded instance whose renewals queued there let its
leases lapse while it lived. Should a renewal still not get through (a database that hangs),
an owner stops its bodies itself before its leases can have run out: a lease is known good
until the moment its renewal was sent plus the lease, and a body whose lease is that close
to ending is fenced (stopped without writing) rather than working on beside a taker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

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
#: A body stops itself when its lease, as last renewed, has less than this left.
FENCE_MARGIN_S = 0.75


class TaskLeases:
    def __init__(self, db: Db, tasks: TaskService, every_s: float = RENEW_S) -> None:
        self._db = db
        self._tasks = tasks
        self._every_s = every_s
        self._renewing = BackgroundTask("task-leases", self._renewals)
        self._claiming = BackgroundTask("task-claims", self._claims)
        self._fencing = BackgroundTask("task-fences", self._fences)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="task-leases")
        self._taking_over: set[asyncio.Task[None]] = set()
        #: Task id -> the monotonic time its lease (as last renewed here) is safe until.
        self._good_until: dict[str, float] = {}

    def start(self) -> None:
        self._renewing.start()
        self._claiming.start()
        self._fencing.start()

    async def stop(self) -> None:
        await self._claiming.stop()
        await self._renewing.stop()
        await self._fencing.stop()
        for pending in list(self._taking_over):
            pending.cancel()
        await asyncio.gather(*self._taking_over, return_exceptions=True)
        self._thread.shutdown(wait=False)

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
        sent = time.monotonic()
        kept = await asyncio.get_running_loop().run_in_executor(
            self._thread,
            self._db.sync,
            lambda s: store.renew_task_leases(s, tasks.owner, held, tasks.lease),
        )
        good_until = sent + tasks.lease.total_seconds() - FENCE_MARGIN_S
        for task_id in kept:
            self._good_until[task_id] = good_until
        for task_id in held.keys() - kept:
            self._good_until.pop(task_id, None)
            if task_id not in tasks.held:
                continue  # it finished here meanwhile
            row = await tasks.get(task_id)
            if row.owner == tasks.owner and not row.state.finished:
                continue  # claimed again by this instance in between
            tasks.lost(task_id, finished=row.state.finished)

    def fence_overdue(self) -> list[str]:
        """Stop the bodies whose lease may run out before a renewal gets through; the tasks
        are left to be claimed (here or elsewhere) and resolved by their resumers."""
        now = time.monotonic()
        tasks = self._tasks
        first_seen = now + tasks.lease.total_seconds() - FENCE_MARGIN_S  # started or claimed
        for task_id in tasks.held.keys() - self._good_until.keys():
            self._good_until[task_id] = first_seen
        overdue = [i for i, until in self._good_until.items() if until <= now and i in tasks.held]
        for task_id in overdue:
            log.warning("task %s: its lease was not renewed in time; stopping it here", task_id)
            self._good_until.pop(task_id, None)
            tasks.lost(task_id, finished=False)
        for task_id in self._good_until.keys() - tasks.held.keys():
            del self._good_until[task_id]  # finished
        return overdue

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

    async def _renewals(self) -> None:
        due = time.monotonic()
        while True:
            due = max(due + self._every_s, time.monotonic())
            await asyncio.sleep(due - time.monotonic())
            woke = time.monotonic()
            try:
                await self.renew()
            except (SQLAlchemyError, CorralError) as exc:  # a database outage must not end the loop
                log.warning("task leases not renewed: %s", exc)
            took = time.monotonic() - woke
            if woke - due + took > self._every_s:  # what an operator needs to find the cause
                log.warning(
                    "task leases renewed late: the event loop woke %.2f s late, the database "
                    "answered in %.2f s",
                    woke - due,
                    took,
                )

    async def _fences(self) -> None:
        """Apart from the renewals: a renewal that hangs must not keep bodies working past
        their lease."""
        while True:
            await asyncio.sleep(self._every_s / 4)
            self.fence_overdue()

    async def _claims(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            try:
                await self.claim()
            except (SQLAlchemyError, CorralError) as exc:  # a database outage must not end the loop
                log.warning("task leases: %s", exc)
