"""``corral vm migrate``: live migration with a progress bar (bytes sent, pass, dirty rate,
expected downtime), ``--no-wait`` for the task id; Ctrl-C stops watching, ``corral task
cancel ID`` aborts it (the VM stays on its source)."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError

from corral.cli import context as c
from corral.cli.client import seg
from corral.cli.task import JsonOpt, follow_task
from corral.cli.units import validation_message
from corral.model.migration import (
    DEFAULT_MAX_DOWNTIME_MS,
    DEFAULT_TRANSPORT,
    MigrationRequest,
    StorageMode,
)


def _done(task_result: dict[str, Any] | None, name: str) -> str:
    result = task_result or {}
    to = result.get("destination", "?")
    total, downtime = result.get("total_time_ms"), result.get("downtime_ms")
    figures = ""
    if total is not None:
        figures = f" in {total / 1000:.1f} s (downtime {downtime} ms)"
    return f"migrated VM {name} to {to} over {result.get('transport', '?')}{figures}"


def migrate(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="A running VM."),
    to: str = typer.Option(..., "--to", metavar="HOST", help="The destination host."),
    transport: str = typer.Option(
        DEFAULT_TRANSPORT,
        "--transport",
        help="tls (QEMU native TLS, default), ssh (tunnelled over qemu+ssh), insecure (plain "
        "TCP: only when an admin allowed it for the cluster) or a plugin's name.",
    ),
    max_downtime: int = typer.Option(
        DEFAULT_MAX_DOWNTIME_MS, "--max-downtime", metavar="MS", help="Longest guest pause."
    ),
    bandwidth: int | None = typer.Option(
        None, "--bandwidth", metavar="MIB/S", help="Cap the migration stream (default: none)."
    ),
    parallel: int | None = typer.Option(
        None,
        "--parallel",
        metavar="N",
        help="Send memory over N connections (multifd, 1-32; default: one stream).",
    ),
    auto_converge: bool = typer.Option(
        True,
        "--auto-converge/--no-auto-converge",
        help="Slow a guest that dirties memory faster than it can be sent.",
    ),
    xbzrle: bool = typer.Option(
        False, "--xbzrle", help="Delta-compress pages sent again (one stream only)."
    ),
    postcopy: bool = typer.Option(
        False,
        "--postcopy",
        help="Switch to post-copy when pre-copy does not converge (after the switch a network "
        "failure loses the VM).",
    ),
    copy_storage: bool = typer.Option(
        False,
        "--copy-storage",
        help="Copy the disks to the destination (default: copy only those it cannot reach; "
        "disks on a storage domain it reaches are never copied).",
    ),
    no_wait: bool = typer.Option(False, "--no-wait", help="Print the task id and return at once."),
    json_out: bool = JsonOpt,
) -> None:
    """Live-migrate a running VM to another host (encrypted with TLS unless told otherwise)."""
    try:
        body = MigrationRequest(
            to=to,
            transport=transport,
            max_downtime_ms=max_downtime,
            bandwidth_mib_s=bandwidth,
            parallel_connections=parallel,
            auto_converge=auto_converge,
            xbzrle=xbzrle,
            postcopy=postcopy,
            storage=StorageMode.COPY if copy_storage else StorageMode.AUTO,
        )
    except ValidationError as exc:
        c.usage_error(validation_message(exc))
    response = c.client(ctx).post(
        f"/vms/{seg(name)}/migrate", json=body.model_dump(mode="json", exclude_none=True)
    )
    task = follow_task(ctx, response, no_wait=no_wait, json_flag=json_out)
    if task is not None:
        c.emit(
            ctx, json_out, task.model_dump(mode="json"), lambda: c.info(_done(task.result, name))
        )
