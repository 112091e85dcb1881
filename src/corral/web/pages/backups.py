"""The backups page: each backup store with its backups (per VM, sizes, kinds), and forms
that back a VM up, verify a store and restore a backup to a new VM (each a task)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from corral.errors import CorralError
from corral.model.backup import BackupInfo, BackupRestoreRequest, VmBackupRequest
from corral.services.runtime import Services
from corral.web.page_auth import PageOperator, PageViewer
from corral.web.templating import render

router = APIRouter(include_in_schema=False)

#: Backups shown per store, newest first.
SHOWN = 200


async def _context(svc: Services, **extra: Any) -> dict[str, Any]:
    stores = await svc.backups.stores()
    backups: dict[str, list[BackupInfo]] = {}
    for store in stores:
        if store.problem is None:
            try:
                backups[store.name] = (await svc.backups.backups(store.name))[::-1][:SHOWN]
            except CorralError:
                backups[store.name] = []
    return {"active": "backups", "stores": stores, "backups": backups, "error": None,
            "notice": None, **extra}  # fmt: skip


@router.get("/backups", name="ui.backups")
async def backups_page(request: Request, _: PageViewer) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "backups.html", await _context(svc))


def _field(raw: Any, key: str) -> str:
    value = raw.get(key, "")
    return value.strip() if isinstance(value, str) else ""


async def _answer(
    request: Request, svc: Services, *, notice: str | None = None, error: str | None = None
) -> HTMLResponse:
    if error is not None:
        request.state.problem_detail = error
    context = await _context(svc, notice=notice, error=error)
    return render(request, "fragments/backup_actions.html", context,
                  status=422 if error else 200)  # fmt: skip


@router.post("/ui/backups", name="ui.vm.backup")
async def back_up(request: Request, who: PageOperator) -> HTMLResponse:
    svc: Services = request.app.state.services
    raw = await request.form()
    vm = _field(raw, "vm")
    request.state.audit_target = vm
    try:
        body = VmBackupRequest(store=_field(raw, "store"), full=raw.get("full") == "1")
        task = await svc.backups.back_up(who, vm, body)
    except ValidationError as exc:
        return await _answer(request, svc, error="; ".join(e["msg"] for e in exc.errors()))
    except CorralError as exc:
        return await _answer(request, svc, error=exc.message)
    return await _answer(request, svc, notice=f"backing up VM {vm} (task {task.id})")


@router.post("/ui/backups/restore", name="ui.backup.restore")
async def restore(request: Request, who: PageOperator) -> HTMLResponse:
    svc: Services = request.app.state.services
    raw = await request.form()
    store, vm, backup = _field(raw, "store"), _field(raw, "vm"), _field(raw, "backup")
    name = _field(raw, "name")
    request.state.audit_target = name
    try:
        body = BackupRestoreRequest(name=name)
        task = await svc.backups.restore(who, store, vm, backup, body)
    except ValidationError as exc:
        return await _answer(request, svc, error="; ".join(e["msg"] for e in exc.errors()))
    except CorralError as exc:
        return await _answer(request, svc, error=exc.message)
    return await _answer(request, svc, notice=f"restoring backup {backup} as VM {name} "
                                              f"(task {task.id})")  # fmt: skip
