"""Long work as tasks: a row with state and progress, a coroutine doing the work, cancellation.

A task's coroutine receives a :class:`TaskContext` to report progress and to learn it was
cancelled. Progress writes are throttled so a fast loop does not hammer the database.

Several instances share the tasks table: the instance that starts a task owns it under a lease
it renews twice a second (:mod:`corral.services.task_leases`). An unfinished task whose lease ran
out (its instance died, or this process restarted) is claimed by a live instance and handed to
the resumer registered for its kind, which finds out from libvirt what happened and finishes
it; kinds without one fail with a message saying so. Each claim raises the task's ``attempt``,
and every write of a task's body carries the attempt it runs under, so a former owner that was
only paused cannot write over the instance that took the task over.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from corral import store
from corral.errors import Cancelled, Conflict, CorralError, DatabaseUnavailable
from corral.model.cursor import SortKey, after_of, page_cursor, query_digest, refused, rest_of
from corral.model.page import Page
from corral.model.task import TaskInfo, TaskState
from corral.services._db import Db
from corral.services.events import Event, EventBus
from corral.services.principal import Principal

log = logging.getLogger(__name__)

TaskBody = Callable[["TaskContext"], Awaitable[dict[str, Any] | None]]
#: Takes over an unfinished task another instance (or this process before a restart) left:
#: resolves it and finishes it, usually by running a body with :meth:`TaskService.resume`.
Resume = Callable[[TaskInfo], Awaitable[None]]

_PROGRESS_INTERVAL_S = 0.25
#: How long a task's lease lasts; its owner renews it twice a second (task_leases): a process
#: the machine starves of CPU for up to 3 s keeps its tasks (2.5 s stalls were seen on two
#: busy cores), and a dead instance's tasks are still taken over within 5 s.
LEASE_S = 4.0
_CANCEL_GRACE_S = 10.0
#: How often a finished task tries again to store its outcome while the database is away.
_FINISH_RETRY_S = 1.0


async def _finished_within(runner: asyncio.Task[None], seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await asyncio.shield(runner)
    except TimeoutError:
        return False
    except asyncio.CancelledError:
        if not runner.done():
            raise
    return True


class TaskContext:
    """Handed to a running task: report progress, learn about cancellation.

    Progress is coalesced: callers report as often as they like (even per chunk, from sync
    callbacks in the loop thread); one writer stores the newest figures at most a few times a
    second, one write at a time, so writes never overtake each other.
    """

    def __init__(self, service: TaskService, task_id: str, attempt: int = 1) -> None:
        self._service = service
        self.id = task_id
        #: The fencing token this body runs under (see the module).
        self.attempt = attempt
        self._latest: dict[str, Any] = {}
        self._last_write = 0.0
        self._writer: asyncio.Task[None] | None = None
        self.cancel_requested = False
        #: Set when the manager stops: a task that ``survives_restart`` (its work goes on
        #: without Corral, like a peer-to-peer migration) then stays unfinished in the
        #: database, for the next manager process to resume.
        self.shutting_down = False
        self.survives_restart = False
        #: Set when another instance took the task over: nothing more is written.
        self.fenced = False
        #: Clear while this instance cannot be sure it still holds the task (its lease is
        #: about to end and no renewal got through): the body waits at its next checkpoint.
        self._held = asyncio.Event()
        self._held.set()

    @property
    def in_doubt(self) -> bool:
        return not self._held.is_set()

    def doubt(self, in_doubt: bool) -> None:
        """The lease's state as the renewals know it (see :mod:`~corral.services.task_leases`)."""
        if in_doubt:
            self._held.clear()
        else:
            self._held.set()

    def report(
        self,
        fraction: float | None = None,
        *,
        phase: str | None = None,
        bytes_done: int | None = None,
        bytes_total: int | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        """Record progress without waiting (call in the event loop thread). ``result`` is
        stored as the task's result while it runs (a migration's persisted steps)."""
        if fraction is not None:
            self._latest["progress"] = min(max(fraction, 0.0), 1.0)
        for key, value in (
            ("phase", phase),
            ("bytes_done", bytes_done),
            ("bytes_total", bytes_total),
            ("result", result),
        ):
            if value is not None:
                self._latest[key] = value
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_latest())

    async def progress(
        self,
        fraction: float | None = None,
        *,
        phase: str | None = None,
        bytes_done: int | None = None,
        bytes_total: int | None = None,
        force: bool = False,
    ) -> None:
        """Like :meth:`report`; with ``force``, wait until it is stored. Raises
        :class:`Cancelled` once a user asked to cancel: reporting is where long work notices.
        A checkpoint: while the task's lease is in doubt it waits until a renewal says this
        instance still holds the task (the body goes on) or not (the body is stopped), so a
        body never begins a step beside an instance that took the task over."""
        if self.in_doubt:
            await self._held.wait()
        if self.cancel_requested:
            raise Cancelled("cancelled by a user")
        self.report(fraction, phase=phase, bytes_done=bytes_done, bytes_total=bytes_total)
        if force:
            await self.settle()

    async def _write_latest(self) -> None:
        # Nobody may ever await this writer (report() is fire-and-forget): it ends quietly,
        # never with an exception left for asyncio to complain about.
        try:
            while self._latest:
                delay = self._last_write + _PROGRESS_INTERVAL_S - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                fields, self._latest = self._latest, {}
                self._last_write = time.monotonic()
                await self._service.update(self.id, attempt=self.attempt, **fields)
        except Conflict as exc:  # finished, or taken over by another instance: stop writing
            self._latest = {}
            log.info("progress of task %s not stored: %s", self.id, exc.message)
        except (CorralError, SQLAlchemyError) as exc:  # the next report tries again
            log.warning("progress of task %s not stored: %s", self.id, exc)

    async def settle(self) -> None:
        """Wait for pending progress writes; a task that already finished ignores them."""
        writer = self._writer
        if writer is None:
            return
        await asyncio.shield(writer)


INTERRUPTED = (
    "interrupted by a restart of the Corral manager or the loss of the instance running it; "
    "the VM's real state was re-read from libvirt: check it and run the operation again if "
    "needed"
)


#: A task that does not survive a restart (``survives_restart``), stopped by its instance's.
SHUT_DOWN = (
    "stopped because the Corral instance running it shut down: check its target and run it "
    "again if needed"
)


def _no_resumer(task: TaskInfo) -> str:
    return (
        f"interrupted by a restart of the Corral manager or the loss of the instance running it; "
        f"a {task.kind} task cannot be resumed: check {task.target} and run it again if needed"
    )


def _task_mark(after: SortKey | None) -> tuple[datetime, str] | None:
    """A tasks cursor's key as the store compares it."""
    if after is None:
        return None
    at, task_id = after
    try:
        return datetime.fromisoformat(str(at)), str(task_id)
    except ValueError:
        raise refused("not a cursor Corral issued") from None


class TaskService:
    def __init__(self, db: Db, bus: EventBus, owner: str | None = None) -> None:
        self._db = db
        self._bus = bus
        #: The instance id that owns the tasks this process starts or takes over.
        self.owner = owner or secrets.token_hex(8)
        self._running: dict[str, tuple[asyncio.Task[None], TaskContext]] = {}
        #: Unfinished tasks this instance holds (id -> attempt): their leases are renewed.
        self.held: dict[str, int] = {}
        self._resumers: dict[str, Resume] = {}
        self.lease = timedelta(seconds=LEASE_S)

    def register_resumer(self, kind: str, resume: Resume) -> None:
        """How an instance takes over an unfinished task of ``kind`` (see the module)."""
        self._resumers[kind] = resume

    async def take_over(self, task: TaskInfo) -> None:
        """Resolve a task this instance just claimed: its kind's resumer, or a failure."""
        self.held[task.id] = task.attempt
        try:
            resume = self._resumers.get(task.kind)
            if resume is not None:
                log.warning("resuming task %s (%s %s)", task.id, task.kind, task.target)
                await resume(task)
            else:
                await self.fail(task, _no_resumer(task))
        except CorralError as exc:
            log.error("could not resume task %s: %s", task.id, exc.message)
            await self.fail(task, exc.message)
        except (SQLAlchemyError, OSError):
            raise  # the database or a file went away: the task stays claimable, tried again
        except Exception as exc:  # a resumer's bug must not leave the task running for ever
            log.exception("could not resume task %s", task.id)
            await self.fail(task, f"{INTERRUPTED} (it could not be resumed: internal error: {exc})")
        finally:
            if task.id not in self._running:
                self.held.pop(task.id, None)

    async def fail(self, task: TaskInfo, message: str) -> None:
        """End a claimed task as failed (not if another instance has taken it since)."""
        try:
            await self.update(task.id, state=TaskState.FAILED, error=message, attempt=task.attempt)
        except Conflict as exc:
            log.info("task %s not failed: %s", task.id, exc.message)

    async def params(self, task_id: str) -> dict[str, Any]:
        """What the task's starter stored for a taker (:meth:`start`'s ``params``)."""
        return await self._db(lambda s: store.task_params(s, task_id))

    async def update(self, task_id: str, **fields: Any) -> TaskInfo:
        info = await self._db(lambda s: store.update_task(s, task_id, **fields))
        self._bus.publish(Event("task", "updated", info.model_dump(mode="json")))
        return info

    async def start(
        self,
        kind: str,
        target: str,
        principal: Principal,
        body: TaskBody,
        phase: str = "",
        params: dict[str, Any] | None = None,
    ) -> TaskInfo:
        """Run ``body`` as a task this instance owns. ``params``: what another instance needs
        to resume it should this one die (JSON; no secrets)."""
        info = await self._db(
            lambda s: store.create_task(
                s,
                kind=kind,
                target=target,
                created_by=principal.user,
                phase=phase,
                owner=self.owner,
                lease=self.lease,
                params=params,
            )
        )
        self._launch(info, body, resumed=False)
        return info

    def _launch(self, info: TaskInfo, body: TaskBody, *, resumed: bool) -> None:
        context = TaskContext(self, info.id, info.attempt)
        runner = asyncio.create_task(
            self._run(info.id, body, context, resumed=resumed), name=f"task-{info.id}"
        )
        self._running[info.id] = (runner, context)
        self.held[info.id] = info.attempt

        def done(_: asyncio.Task[None]) -> None:
            self._running.pop(info.id, None)
            self.held.pop(info.id, None)

        runner.add_done_callback(done)

    async def run(
        self, kind: str, target: str, principal: Principal, body: TaskBody, phase: str = ""
    ) -> TaskInfo:
        """Start a task and wait until it finished; its final state (never raises for the
        task's own failure). For work a request carries out while the caller waits, but that
        others should see progress, and be able to cancel, like any task (uploads)."""
        info = await self.start(kind, target, principal, body, phase)
        entry = self._running.get(info.id)
        if entry is not None:
            await asyncio.wait({entry[0]})
        return await self.get(info.id)

    async def resume(self, task: TaskInfo, body: TaskBody) -> None:
        """Run ``body`` for a task this instance took over (it resolves what happened
        meanwhile and finishes the task)."""
        self._launch(task, body, resumed=True)

    def doubt(self, task_id: str, in_doubt: bool) -> None:
        """Hold the task's body at its next checkpoint (its lease may be ending with no
        renewal through), or let it go on (a renewal got through)."""
        entry = self._running.get(task_id)
        if entry is not None:
            entry[1].doubt(in_doubt)

    def lost(self, task_id: str, *, finished: bool) -> None:
        """This instance no longer holds the task: another took it over (``finished``:
        False), or someone ended it (a user's cancel through another instance). Its body
        stops without writing; work that goes on without Corral (a migration) is left to
        the holder."""
        self.held.pop(task_id, None)
        entry = self._running.get(task_id)
        if entry is None:
            return
        runner, context = entry
        log.warning("task %s %s", task_id, "ended elsewhere" if finished else "taken over")
        context.shutting_down = not finished
        context.cancel_requested = finished
        context.fenced = True
        runner.cancel()

    async def _run(
        self, task_id: str, body: TaskBody, context: TaskContext, *, resumed: bool = False
    ) -> None:
        try:
            if not resumed:
                await self.update(task_id, state=TaskState.RUNNING, attempt=context.attempt)
            result = await body(context)
        except (asyncio.CancelledError, Cancelled):
            if context.fenced or (context.shutting_down and context.survives_restart):
                log.info("task %s left running for another instance", task_id)
                await context.settle()
                return
            why = SHUT_DOWN if context.shutting_down else "cancelled by a user"
            await self._finish(context, TaskState.CANCELLED, error=why)
        except CorralError as exc:
            await self._finish(context, TaskState.FAILED, error=exc.message)
        except Exception as exc:  # top level of a task: record, never lose the error
            log.exception("task %s failed unexpectedly", task_id)
            await self._finish(context, TaskState.FAILED, error=f"internal error: {exc}")
        else:
            await self._finish(context, TaskState.SUCCEEDED, result=result)

    async def _finish(self, context: TaskContext, state: TaskState, **fields: Any) -> None:
        # Progress still being written must land before the final state, not after it.
        await context.settle()
        task_id = context.id
        while True:
            try:
                await self.update(task_id, state=state, attempt=context.attempt, **fields)
                return
            except Conflict as exc:
                log.info("task %s not finished here: %s", task_id, exc.message)
                return
            except DatabaseUnavailable:
                # The outcome must not be lost: the task stays held (its lease renewed once
                # the database is back) until it is stored. Had another instance taken it
                # over meanwhile, the renewal finds out and cancels this (``lost``).
                if context.shutting_down:
                    log.warning("task %s: outcome not stored, the database is away", task_id)
                    return
                await asyncio.sleep(_FINISH_RETRY_S)

    async def get(self, task_id: str) -> TaskInfo:
        return await self._db.read(lambda s: store.get_task(s, task_id))

    async def list_tasks(self, state: TaskState | None = None, limit: int = 100) -> list[TaskInfo]:
        return await self._db.read(lambda s: store.list_tasks(s, state=state, limit=limit))

    async def page(
        self, state: TaskState | None, kind: str | None, limit: int, cursor: str | None
    ) -> Page[TaskInfo]:
        """Newest first, continued by cursor."""
        digest = query_digest("tasks", state=state, kind=kind)
        before = _task_mark(after_of(cursor, digest, 2))
        rows = await self._db(
            lambda s: store.list_tasks(s, state=state, limit=limit + 1, kind=kind, before=before)
        )
        chosen, last = rest_of(rows, limit, lambda t: (t.created_at.isoformat(), t.id))
        return Page[TaskInfo](items=chosen, next_cursor=page_cursor(digest, last))

    async def cancel(self, task_id: str) -> TaskInfo:
        info = await self.get(task_id)
        if info.state.finished:
            raise Conflict(f"task {task_id} has already finished ({info.state.value})")
        entry = self._running.get(task_id)
        if entry is None:
            return await self.update(task_id, state=TaskState.CANCELLED, error="cancelled")
        runner, context = entry
        # Cooperative first: work running in a thread (an image upload) stops and cleans up
        # after itself at its next check; cancelling the coroutine alone would leave that
        # thread running past the task's end. Only a task that ignores the request is
        # interrupted.
        context.cancel_requested = True
        if not await _finished_within(runner, _CANCEL_GRACE_S):
            runner.cancel()
            await _finished_within(runner, 30)
        return await self.get(task_id)

    async def wait(self, task_id: str, poll_s: float = 0.5) -> TaskInfo:
        """Until the task finished; its final row."""
        while True:
            entry = self._running.get(task_id)
            if entry is not None:
                await asyncio.wait({entry[0]}, timeout=poll_s)
            info = await self.get(task_id)
            if info.state.finished:
                return info
            if entry is None:
                await asyncio.sleep(poll_s)

    async def shutdown(self) -> None:
        """Stop every task; those whose work goes on without Corral stay unfinished, and
        their leases are given up so another instance takes them over at once."""
        survivors = [i for i, (_, c) in self._running.items() if c.survives_restart]
        for runner, context in list(self._running.values()):
            context.shutting_down = True
            if not context.survives_restart:
                context.cancel_requested = True
            runner.cancel()
        if self._running:
            await asyncio.gather(*(r for r, _ in self._running.values()), return_exceptions=True)
        if survivors:
            try:
                await self._db(lambda s: store.release_task_leases(s, self.owner, survivors))
            except CorralError as exc:
                log.warning("task leases not given up: %s", exc.message)
