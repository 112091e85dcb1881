"""Tasks: long-running work with progress, persisted so that a restart can resolve them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from corral.errors import Conflict, InvalidRequest
from corral.model.task import TaskInfo, TaskState
from corral.store._integrity import not_found
from corral.store.coltypes import utcnow
from corral.store.instances import db_now
from corral.store.tables import Task

#: Allowed state changes; a finished task never changes again. Pending may end directly
#: (cancelled before it started, or failed when the manager restarts before it ran).
_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.PENDING: frozenset(
        {TaskState.RUNNING, TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED}
    ),
    TaskState.RUNNING: frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED}),
    TaskState.SUCCEEDED: frozenset(),
    TaskState.FAILED: frozenset(),
    TaskState.CANCELLED: frozenset(),
}
_UNFINISHED = (TaskState.PENDING.value, TaskState.RUNNING.value)


def task_info(task: Task) -> TaskInfo:
    return TaskInfo(
        id=task.id,
        kind=task.kind,
        target=task.target,
        state=TaskState(task.state),
        progress=task.progress,
        phase=task.phase,
        bytes_done=task.bytes_done,
        bytes_total=task.bytes_total,
        error=task.error,
        result=task.result,
        created_by=task.created_by,
        created_at=task.created_at,
        updated_at=task.updated_at,
        finished_at=task.finished_at,
        owner=task.owner,
        attempt=task.attempt,
    )


def create_task(
    session: Session,
    *,
    kind: str,
    target: str,
    created_by: str,
    phase: str = "",
    owner: str | None = None,
    lease: timedelta | None = None,
    params: dict[str, Any] | None = None,
) -> TaskInfo:
    """A pending task; with ``owner``, held by that instance for ``lease`` (it renews)."""
    now = utcnow()
    task = Task(
        kind=kind,
        target=target,
        created_by=created_by,
        state=TaskState.PENDING.value,
        progress=0.0,
        phase=phase,
        created_at=now,
        updated_at=now,
        owner=owner,
        lease_expires_at=db_now(session) + lease if owner and lease else None,
        params=params,
        attempt=1,
    )
    session.add(task)
    session.flush()
    return task_info(task)


def _get(session: Session, task_id: str, *, for_update: bool = False) -> Task:
    query = select(Task).where(Task.id == task_id).execution_options(populate_existing=True)
    if for_update:
        # Row lock on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises writers): a worker
        # finishing a task and a user cancelling it must not both pass the "not finished" check.
        query = query.with_for_update()
    task = session.scalars(query).one_or_none()
    if task is None:
        raise not_found("task", f"with id {task_id!r}", "check the id against the list of tasks")
    return task


def get_task(session: Session, task_id: str) -> TaskInfo:
    return task_info(_get(session, task_id))


def list_tasks(
    session: Session,
    state: TaskState | None = None,
    limit: int = 100,
    *,
    kind: str | None = None,
    before: tuple[datetime, str] | None = None,
) -> list[TaskInfo]:
    """Newest first (ties by id, descending); with ``before`` only those after that
    ``(created_at, id)`` in this order: the next page."""
    query = select(Task).order_by(Task.created_at.desc(), Task.id.desc()).limit(limit)
    if state is not None:
        query = query.where(Task.state == TaskState(state).value)
    if kind is not None:
        query = query.where(Task.kind == kind)
    if before is not None:
        at, task_id = before
        query = query.where(
            or_(Task.created_at < at, and_(Task.created_at == at, Task.id < task_id))
        )
    return [task_info(t) for t in session.scalars(query)]


def list_unfinished_tasks(session: Session) -> list[TaskInfo]:
    """Pending and running tasks, oldest first (what a restart must resolve)."""
    query = select(Task).where(Task.state.in_(_UNFINISHED)).order_by(Task.created_at, Task.id)
    return [task_info(t) for t in session.scalars(query)]


def update_task(
    session: Session,
    task_id: str,
    *,
    state: TaskState | None = None,
    progress: float | None = None,
    phase: str | None = None,
    bytes_done: int | None = None,
    bytes_total: int | None = None,
    error: str | None = None,
    result: dict[str, Any] | None = None,
    now: datetime | None = None,
    attempt: int | None = None,
) -> TaskInfo:
    """Update the given fields (None: unchanged) and ``updated_at``. ``progress`` is a
    fraction from 0.0 to 1.0 (InvalidRequest otherwise).

    Conflict if the task has finished (any update), or on a state change the lifecycle does not
    allow: a worker reporting progress on a task a user cancelled learns it this way. Reaching
    ``succeeded`` sets progress to 1.0; reaching any final state sets ``finished_at``.

    ``attempt`` (the fencing token of the writer): Conflict if another instance has taken the
    task over since, so a former owner that was only paused never writes over the taker.
    """
    if progress is not None and not 0.0 <= progress <= 1.0:
        raise InvalidRequest(f"task progress is a fraction from 0.0 to 1.0, not {progress}")
    task = _get(session, task_id, for_update=True)
    current = TaskState(task.state)
    if attempt is not None and attempt != task.attempt:
        raise Conflict(f"task {task_id} was taken over by another Corral instance")
    if current.finished:
        raise Conflict(f"task {task_id} has already finished ({current.value}); it cannot change")
    new = TaskState(state) if state is not None else None
    if new is not None and new != current and new not in _TRANSITIONS[current]:
        raise Conflict(f"task {task_id} cannot go from {current.value} to {new.value}")
    now = now or utcnow()
    _apply(task, progress, phase, bytes_done, bytes_total, error, result)
    if new is not None:
        task.state = new.value
        if new.finished:
            task.finished_at = now
            task.lease_expires_at = None
            if new is TaskState.SUCCEEDED:
                task.progress = 1.0
    task.updated_at = now
    session.flush()
    return task_info(task)


def _apply(
    task: Task,
    progress: float | None,
    phase: str | None,
    bytes_done: int | None,
    bytes_total: int | None,
    error: str | None,
    result: dict[str, Any] | None,
) -> None:
    if progress is not None:
        task.progress = progress
    if phase is not None:
        task.phase = phase
    if bytes_done is not None:
        task.bytes_done = bytes_done
    if bytes_total is not None:
        task.bytes_total = bytes_total
    if error is not None:
        task.error = error
    if result is not None:
        task.result = result


def last_finished(session: Session, kinds: Sequence[str]) -> datetime | None:
    """When the newest finished task of one of ``kinds`` ended (None: none has)."""
    query = select(func.max(Task.finished_at)).where(
        Task.kind.in_(list(kinds)), Task.finished_at.is_not(None)
    )
    return session.scalar(query)


def tasks_of_kinds(
    session: Session, kinds: Sequence[str], since: datetime, limit: int = 500
) -> list[TaskInfo]:
    """Tasks of ``kinds`` created at or after ``since``, oldest first."""
    query = (
        select(Task)
        .where(Task.kind.in_(list(kinds)), Task.created_at >= since)
        .order_by(Task.created_at, Task.id)
        .limit(limit)
    )
    return [task_info(t) for t in session.scalars(query)]


def task_params(session: Session, task_id: str) -> dict[str, Any]:
    """What the task's starter stored for an instance that takes it over ({} if nothing)."""
    return dict(_get(session, task_id).params or {})


def renew_task_leases(
    session: Session, owner: str, held: dict[str, int], lease: timedelta
) -> set[str]:
    """Extend the leases of the unfinished tasks ``owner`` runs (``held``: id -> attempt)
    in one statement; the ids it still holds (the others finished, or were taken over: a
    claim changes the owner and raises the attempt)."""
    if not held:
        return set()
    until = db_now(session) + lease
    renewed = session.scalars(
        update(Task)
        .where(
            tuple_(Task.id, Task.attempt).in_(list(held.items())),
            Task.owner == owner,
            Task.state.in_(_UNFINISHED),
        )
        .values(lease_expires_at=until)
        .returning(Task.id),
        execution_options={"synchronize_session": False},
    )
    return set(renewed)


def release_task_leases(session: Session, owner: str, ids: list[str]) -> None:
    """Let the given unfinished tasks of ``owner`` be taken over at once (a stopping
    instance leaves work that goes on without it, like a migration, to the others)."""
    if ids:
        session.execute(
            update(Task)
            .where(Task.id.in_(ids), Task.owner == owner, Task.state.in_(_UNFINISHED))
            .values(lease_expires_at=db_now(session))
        )


def claim_tasks(
    session: Session,
    owner: str,
    lease: timedelta,
    *,
    limit: int = 50,
    any_lease: bool = False,
    skip: set[str] | frozenset[str] = frozenset(),
) -> list[TaskInfo]:
    """Take over unfinished tasks whose lease expired (or that never had one): ``owner``
    holds them for ``lease`` and each one's attempt goes up by one. ``FOR UPDATE SKIP
    LOCKED``: instances claiming at the same time take different tasks, and none waits for a
    row another is claiming or updating (SQLite's BEGIN IMMEDIATE serialises claims).
    ``any_lease``: every unfinished task, lease or not (SQLite at start: the database's lock
    file proves no other instance runs). ``skip``: ids left alone (the claimer's own live
    tasks)."""
    now = db_now(session)
    query = select(Task).where(Task.state.in_(_UNFINISHED))
    if skip:
        query = query.where(Task.id.not_in(list(skip)))
    if not any_lease:
        query = query.where(or_(Task.lease_expires_at.is_(None), Task.lease_expires_at <= now))
    query = query.order_by(Task.created_at, Task.id).limit(limit)
    claimed = []
    for task in session.scalars(query.with_for_update(skip_locked=True)):
        task.owner = owner
        task.attempt += 1
        task.lease_expires_at = now + lease
        claimed.append(task)
    session.flush()
    return [task_info(t) for t in claimed]
