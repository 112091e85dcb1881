"""What a VM use case that can run as a task holds: the inventory, the task service, the audit
log and the per-VM operation lock (one long operation at a time per VM)."""

from __future__ import annotations

from corral.services.audit import AuditService
from corral.services.locks import OperationLocks
from corral.services.tasks import TaskService
from corral.services.vms.inventory import VmInventory


class TaskUseCase:
    def __init__(
        self,
        inventory: VmInventory,
        tasks: TaskService,
        audit: AuditService,
        locks: OperationLocks,
    ) -> None:
        self._inventory = inventory
        self._tasks = tasks
        self._audit = audit
        self._locks = locks
