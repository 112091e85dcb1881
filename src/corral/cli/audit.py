"""``corral audit``: who did what, when, and how it ended."""

from __future__ import annotations

import typer

from corral.cli import context as c
from corral.cli import pages
from corral.cli.output import audit_table
from corral.cli.task import JsonOpt
from corral.model.auth import AuditEntry


def audit(
    ctx: typer.Context,
    limit: int | None = typer.Option(
        None,
        "--limit",
        min=1,
        max=1000,
        help="Entries per page (1-1000; default 100, with --all 1000).",
    ),
    user: str | None = typer.Option(None, "--user", help="Only this user's actions."),
    action: str | None = typer.Option(None, "--action", help="Only this action (e.g. vm.create)."),
    cursor: str | None = typer.Option(
        None, "--cursor", help="Continue where a previous page ended (the cursor it printed)."
    ),
    every: bool = typer.Option(False, "--all", help="Every page, not only the first."),
    json_out: bool = JsonOpt,
) -> None:
    """Show the audit log, newest first."""
    listing = pages.fetch(
        c.client(ctx),
        "/audit",
        {"user": user, "action": action},
        limit=limit,
        cursor=cursor,
        every=every,
        what="entries",
    )
    entries = listing.parsed(AuditEntry)
    c.emit(ctx, json_out, listing.json(), lambda: c.out.print(audit_table(entries)))
    pages.hint_more(listing, "entries")
