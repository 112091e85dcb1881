"""``corral audit``: who did what, when, and how it ended."""

from __future__ import annotations

import typer

from corral.cli import context as c
from corral.cli.client import parse_list
from corral.cli.output import audit_table
from corral.cli.task import JsonOpt
from corral.model.auth import AuditEntry


def audit(
    ctx: typer.Context,
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many entries."),
    user: str | None = typer.Option(None, "--user", help="Only this user's actions."),
    action: str | None = typer.Option(None, "--action", help="Only this action (e.g. vm.create)."),
    json_out: bool = JsonOpt,
) -> None:
    """Show the audit log, newest first."""
    response = c.client(ctx).get("/audit", {"limit": limit, "user": user, "action": action})
    entries = parse_list(response, AuditEntry)
    c.emit(ctx, json_out, response.json(), lambda: c.out.print(audit_table(entries)))
