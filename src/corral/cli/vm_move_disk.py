"""``corral vm move-disk``: move one disk of a VM to another storage domain, with a progress
bar (bytes copied); ``--no-wait`` for the task id; Ctrl-C stops watching, ``corral task
cancel ID`` stops the move (the VM stays on its old disk, the new volume is deleted)."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError

from corral.cli import context as c
from corral.cli.client import seg
from corral.cli.task import JsonOpt, follow_task
from corral.cli.units import validation_message
from corral.model.disk_move import DiskMoveRequest


def _done(result: dict[str, Any] | None, name: str, disk: str, to: str) -> str:
    result = result or {}
    how = "live" if result.get("live") else "while shut off"
    where = result.get("path", "?")
    source = result.get("source", "")
    return f"moved disk {disk} of VM {name} to storage domain {to} {how}: {where} ({source})"


def move_disk(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="VM", help="The VM (running or shut off)."),
    disk: str = typer.Argument(..., metavar="DISK", help="The disk's name or target (vdb)."),
    to: str = typer.Option(..., "--to", metavar="DOMAIN", help="The target storage domain."),
    keep_source: bool = typer.Option(
        False, "--keep-source", help="Keep the old volume (default: deleted after the move)."
    ),
    bandwidth: int | None = typer.Option(
        None, "--bandwidth", metavar="MIB/S", help="Cap a live copy (default: none)."
    ),
    no_wait: bool = typer.Option(False, "--no-wait", help="Print the task id and return at once."),
    json_out: bool = JsonOpt,
) -> None:
    """Move a disk of a VM to another storage domain its host reaches (live if it runs)."""
    try:
        body = DiskMoveRequest(to=to, keep_source=keep_source, bandwidth_mib_s=bandwidth)
    except ValidationError as exc:
        c.usage_error(validation_message(exc))
    response = c.client(ctx).post(
        f"/vms/{seg(name)}/disks/{seg(disk)}/move",
        json=body.model_dump(mode="json", exclude_none=True),
    )
    task = follow_task(ctx, response, no_wait=no_wait, json_flag=json_out)
    if task is not None:
        c.emit(
            ctx,
            json_out,
            task.model_dump(mode="json"),
            lambda: c.info(_done(task.result, name, disk, to)),
        )
