"""Task leases: renew those this instance holds, claim those whose holder went away.

Twice a second: extend the lease of each unfinished task this instance runs (one UPDATE), stop
the bodies of those it no longer holds (taken over while this process was stalled, or ended
by a user through another instance); and, in a loop of its own, claim unfinished tasks whose
lease ran out (``SELECT … FOR UPDATE SKIP LOCKED``) and hand each to
:meth:`TaskService.take_over`. With a 4 s lease a dead instance's tasks are taken over 4-4.5 s
after its last renewal, 3.5-4.5 s after its death.

Renewals run in a thread of their own, paced by the clock (not a sleep after the previous
round), neither in asyncio's default pool of threads (a loaded instance whose renewals queued
there behind long calls let its leases lapse while it lived) nor on the event loop (on two
busy cores the loop of a loaded instance woke up to 2.5 s late): a lease says that this
process lives and holds the task, and its bodies do not run while its loop stalls.

Should a renewal not get through (a database that hangs, or is cut off from this instance
only), the owner holds its bodies before their leases can have run out: a lease is known good
until the moment its renewal was sent plus the lease, and a body whose lease is closer to its
end than :data:`DOUBT_MARGIN_S` waits at its next checkpoint (``TaskContext.progress``, which
bodies call before each step) until a renewal gets through: it goes on if the task is still
this instance's (nobody claimed it: a claim raises the attempt), and is stopped without
writing if another instance took it, so it never begins a step beside the taker.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from sqlalchemy.exc import SQLAlchemyError

from corral import store
from corral.errors import CorralError
from corral.model.task import TaskInfo
from corral.services._background import BackgroundTask
from corral.services._db import Db
from corral.services.tasks import TaskService

log = logging.getLogger(__name__)

#: How often leases are renewed and expired ones claimed.
RENEW_S = 0.5
#: A body waits at its next checkpoint when its lease, as last renewed, has less left.
DOUBT_MARGIN_S = 0.75


class TaskLeases:
    def __init__(self, db: Db, tasks: TaskService, every_s: float = RENEW_S) -> None:
        self._db = db
        self._tasks = tasks
        self._every_s = every_s
        self._renewer: threading.Thread | None = None
        self._stopping = threading.Event()
        self._claiming = BackgroundTask("task-claims", self._claims)
        self._doubting = BackgroundTask("task-doubts", self._doubts)
        self._taking_over: set[asyncio.Task[None]] = set()
        #: Task id -> the monotonic time its lease (as last renewed here) is safe until;
        #: written by the renewing thread, read by the loop.
        self._good_until: dict[str, float] = {}
        self._lock = threading.Lock()
        #: Tasks whose bodies are held (see :meth:`doubt_overdue`).
        self._doubted: set[str] = set()

    def start(self, *, sole: bool = False) -> None:
        """``sole``: no other instance can exist (SQLite: its lock file proves it), so a
        lapsed lease means only that this process was slow, never that its holder died:
        nothing is claimed after start (a claim would run a live task's resumer beside its
        body) and no body held."""
        loop = asyncio.get_running_loop()
        self._stopping.clear()
        self._renewer = threading.Thread(
            target=self._renew_forever, args=(loop,), name="task-leases", daemon=True
        )
        self._renewer.start()
        if not sole:
            self._claiming.start()
            self._doubting.start()

    async def stop(self) -> None:
        await self._claiming.stop()
        await self._doubting.stop()
        self._stopping.set()
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            await asyncio.to_thread(renewer.join, 10)
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

    def renew_now(self) -> tuple[dict[str, int], set[str]]:
        """One renewal (blocking: the renewing thread's): the tasks held when it was sent,
        and those it renewed."""
        tasks = self._tasks
        held = dict(tasks.held)  # one C-level copy: atomic against the loop's changes
        sent = time.monotonic()
        kept = self._db.sync(lambda s: store.renew_task_leases(s, tasks.owner, held, tasks.lease))
        good_until = sent + tasks.lease.total_seconds() - DOUBT_MARGIN_S
        with self._lock:
            for task_id in kept:
                self._good_until[task_id] = good_until
            for task_id in held.keys() - kept:  # in doubt until _settle knows what happened
                self._good_until[task_id] = 0.0
        return held, kept

    async def _settle(self, held: dict[str, int], kept: set[str]) -> None:
        """Stop the bodies of the tasks a renewal found this instance no longer holds."""
        tasks = self._tasks
        for task_id in held.keys() - kept:
            if task_id not in tasks.held:
                continue  # it finished here meanwhile
            row = await tasks.get(task_id)
            if row.owner == tasks.owner and not row.state.finished:
                continue  # claimed again by this instance in between
            tasks.lost(task_id, finished=row.state.finished)

    def doubt_overdue(self) -> list[str]:
        """Hold at their next checkpoint the bodies whose lease may end before a renewal
        gets through; a renewal then lets them go on, or stops them if it finds the task
        taken over."""
        now = time.monotonic()
        tasks = self._tasks
        first_seen = now + tasks.lease.total_seconds() - DOUBT_MARGIN_S  # started or claimed
        with self._lock:
            for task_id in tasks.held.keys() - self._good_until.keys():
                self._good_until[task_id] = first_seen
            for task_id in self._good_until.keys() - tasks.held.keys():
                del self._good_until[task_id]  # finished, or no longer this instance's
            overdue = [i for i, until in self._good_until.items() if until <= now]
        for task_id in overdue:
            if task_id not in self._doubted:
                log.warning("task %s: lease not renewed in time; holding its body", task_id)
                self._doubted.add(task_id)
            tasks.doubt(task_id, True)
        for task_id in self._doubted - set(overdue):
            self._doubted.discard(task_id)
            if task_id in tasks.held:
                log.info("task %s: lease renewed; its body goes on", task_id)
                tasks.doubt(task_id, False)
        return overdue

    async def claim(self) -> list[TaskInfo]:
        """Claim expired tasks; each is taken over in the background (a resumer may talk to
        hosts for a while, and renewals must go on meanwhile)."""
        tasks = self._tasks
        mine = set(tasks.held)  # never this instance's own live tasks (renewals decide those)
        claimed = await self._db(
            lambda s: store.claim_tasks(s, tasks.owner, tasks.lease, skip=mine)
        )
        for task in claimed:
            tasks.held[task.id] = task.attempt
            taking = asyncio.create_task(tasks.take_over(task), name=f"take-over-{task.id}")
            self._taking_over.add(taking)
            taking.add_done_callback(self._taking_over.discard)
        return claimed

    def _renew_forever(self, loop: asyncio.AbstractEventLoop) -> None:
        """The renewing thread: paced by the clock, independent of the event loop (a loop
        stalled by a loaded machine does not stall the process's claim on its tasks, and
        its bodies do not run while it is stalled)."""
        due = time.monotonic()
        while True:
            due = max(due + self._every_s, time.monotonic())
            if self._stopping.wait(max(due - time.monotonic(), 0)):
                return
            woke = time.monotonic()
            try:
                held, kept = self.renew_now()
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any failure
                log.warning("task leases not renewed: %s", exc)
                continue
            took = time.monotonic() - woke
            if woke - due + took > self._every_s:  # what an operator needs to find the cause
                log.warning(
                    "task leases renewed late: the renewing thread woke %.2f s late, the "
                    "database answered in %.2f s",
                    woke - due,
                    took,
                )
            if held.keys() - kept:
                try:
                    asyncio.run_coroutine_threadsafe(self._settle(held, kept), loop)
                except RuntimeError:  # the loop is closed: the process is ending
                    return

    async def _doubts(self) -> None:
        """Apart from the renewals: a renewal that hangs must not keep bodies working past
        their lease."""
        while True:
            await asyncio.sleep(self._every_s / 4)
            self.doubt_overdue()

    async def _claims(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            try:
                await self.claim()
            except (SQLAlchemyError, CorralError) as exc:  # a database outage must not end the loop
                log.warning("task leases: %s", exc)
