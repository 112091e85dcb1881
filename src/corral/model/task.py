"""Tasks: long work with progress (``202`` + task id)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel


class TaskState(StrEnum):
    """pending -> running -> (succeeded | failed | cancelled); pending -> cancelled."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED)


class TaskInfo(BaseModel):
    id: str
    kind: str
    target: str
    state: TaskState
    progress: float = 0.0
    phase: str = ""
    bytes_done: int | None = None
    bytes_total: int | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    created_by: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    #: The Corral instance that runs it (or ran it last); None for tasks from before leases.
    owner: str | None = None
    #: 1 when it starts; raised each time another instance takes it over.
    attempt: int = 1
