"""Tasks and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from corral.api.deps import Admin, Operator, Svc, Viewer
from corral.api.openapi import problem_responses
from corral.api.params import CursorQuery, IdPath, LimitQuery, NameQuery
from corral.model.auth import AuditEntry
from corral.model.common import XML_TEXT_PATTERN
from corral.model.page import DEFAULT_LIMIT, Page
from corral.model.task import TaskInfo, TaskState

router = APIRouter()


@router.get("/tasks", name="task.list", tags=["tasks"])
async def list_tasks(
    svc: Svc,
    _: Viewer,
    state: TaskState | None = None,
    kind: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^[a-z][a-z0-9_.-]*$", description="e.g. vm.import"),
    ] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[TaskInfo]:
    """Tasks, newest first, a page at a time."""
    return await svc.tasks.page(state, kind, limit, cursor)


@router.get("/tasks/{task_id}", name="task.show", tags=["tasks"])
async def show_task(task_id: IdPath, svc: Svc, _: Viewer) -> TaskInfo:
    return await svc.tasks.get(task_id)


@router.post(
    "/tasks/{task_id}/cancel",
    name="task.cancel",
    tags=["tasks"],
    responses=problem_responses((409, "the task has finished already")),
)
async def cancel_task(task_id: IdPath, svc: Svc, _: Operator) -> TaskInfo:
    return await svc.tasks.cancel(task_id)


@router.get("/audit", name="audit.list", tags=["audit"])
async def list_audit(
    svc: Svc,
    _: Admin,
    limit: LimitQuery = DEFAULT_LIMIT,
    user: NameQuery = None,
    action: Annotated[
        str | None, Query(max_length=255, pattern=XML_TEXT_PATTERN, description="e.g. vm.create")
    ] = None,
    cursor: CursorQuery = None,
) -> Page[AuditEntry]:
    """The audit log, newest first, a page at a time."""
    return await svc.audit.page(limit, user, action, cursor)
