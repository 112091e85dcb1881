"""Backup stores, VM backups (tasks), backup listings, verify and restore."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from corral.api.deps import Admin, Operator, Svc, Viewer
from corral.api.openapi import on_host, problem_responses
from corral.api.params import NamePath
from corral.api.routers.vms import ACCEPTED, accepted
from corral.model.backup import (
    BackupInfo,
    BackupRestoreRequest,
    BackupStoreCreate,
    BackupStoreInfo,
    PruneRequest,
    PruneResult,
    VmBackupRequest,
)

router = APIRouter(tags=["backups"])


@router.get("/backup-stores", name="backup_store.list")
async def list_stores(svc: Svc, _: Viewer) -> list[BackupStoreInfo]:
    return await svc.backups.stores()


@router.post(
    "/backup-stores",
    name="backup_store.create",
    status_code=201,
    responses=problem_responses(
        (409, "the name or path is taken, or the directory is not empty"),
        (422, "malformed, or a key that is not a Corral backup key"),
    ),
)
async def add_store(
    body: BackupStoreCreate, request: Request, svc: Svc, who: Admin
) -> BackupStoreInfo:
    """Make a backup store in an empty directory of Corral's machine (admins: it is a path
    there). With ``key`` it is encrypted; the key is kept sealed and never shown."""
    request.state.audit_target = body.name
    request.state.audit_detail = f"at {body.path}" + (", encrypted" if body.key else "")
    return await svc.backups.add_store(who, body)


@router.get("/backup-stores/{name}", name="backup_store.show",
            responses=problem_responses(404))  # fmt: skip
async def show_store(name: NamePath, svc: Svc, _: Viewer) -> BackupStoreInfo:
    return await svc.backups.show_store(name)


@router.delete("/backup-stores/{name}", name="backup_store.delete", status_code=204,
               responses=problem_responses(404))  # fmt: skip
async def remove_store(name: NamePath, svc: Svc, _who: Admin) -> Response:
    """Corral forgets the store; its directory and the backups in it stay."""
    await svc.backups.remove_store(name)
    return Response(status_code=204)


@router.get("/backup-stores/{name}/backups", name="backup_store.backups",
            responses=problem_responses(404, 409))  # fmt: skip
async def store_backups(
    name: NamePath, svc: Svc, _: Viewer, vm: str | None = None
) -> list[BackupInfo]:
    return await svc.backups.backups(name, vm)


@router.post(
    "/backup-stores/{name}/verify",
    name="backup_store.verify",
    status_code=202,
    responses={**ACCEPTED, **problem_responses(404, 409)},
)
async def verify_store(name: NamePath, request: Request, svc: Svc, who: Operator) -> Response:
    """Re-read and re-hash every chunk of every backup: a task that fails naming the
    damaged backups and chunks."""
    request.state.audit_target = name
    return accepted(await svc.backups.verify(who, name))


@router.post(
    "/backup-stores/{name}/prune",
    name="backup_store.prune",
    responses=problem_responses(404, (409, "the store is busy with a backup, or unreadable")),
)
async def prune_store(
    name: NamePath, body: PruneRequest, request: Request, svc: Svc, _who: Operator
) -> PruneResult:
    """Delete the backups the retention does not keep (per VM), then the chunks no backup
    uses; ``dry_run`` says what would go."""
    request.state.audit_target = name
    return await svc.backups.prune(name, body)


@router.post(
    "/backup-stores/{name}/backups/{vm}/{backup}/restore",
    name="backup.restore",
    status_code=202,
    responses={**ACCEPTED, **on_host((404, "no such store or backup"), (409, "the name is taken"))},
)
async def restore_backup(
    name: NamePath, vm: NamePath, backup: str, body: BackupRestoreRequest, request: Request,
    svc: Svc, who: Operator,
) -> Response:  # fmt: skip
    """A new VM from a backup: every chunk is checked first, then its disks are written and
    it is defined with the backed-up definition (a new UUID and MAC addresses)."""
    request.state.audit_target = body.name
    request.state.audit_detail = f"from backup {backup} of VM {vm} in store {name}"
    return accepted(await svc.backups.restore(who, name, vm, backup, body))


@router.post(
    "/vms/{name}/backups",
    name="vm.backup",
    status_code=202,
    responses={
        **ACCEPTED,
        **on_host((404, "no such VM or store"), (409, "the VM cannot be backed up now")),
    },
)
async def back_up_vm(
    name: NamePath, body: VmBackupRequest, request: Request, svc: Svc, who: Operator
) -> Response:
    """Back the VM up into a store (a task): full the first time, then incremental."""
    request.state.audit_target = name
    request.state.audit_detail = f"into store {body.store}" + (" (full)" if body.full else "")
    return accepted(await svc.backups.back_up(who, name, body))


@router.get("/vms/{name}/backups", name="vm.backups", responses=problem_responses(404))
async def vm_backups(name: NamePath, svc: Svc, _: Viewer) -> list[BackupInfo]:
    return await svc.backups.vm_backups(name)
