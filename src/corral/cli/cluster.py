"""``corral cluster …``: cluster-wide settings (admins change them; every change is audited)."""

from __future__ import annotations

import typer

from corral.cli import context as c
from corral.cli.client import parse
from corral.cli.output import settings_table
from corral.cli.task import JsonOpt
from corral.model.cluster import ClusterSettings, ClusterSettingsUpdate

app = typer.Typer(help="Cluster-wide settings.", no_args_is_help=True)

_TRUE = {"true", "on", "yes", "1"}
_FALSE = {"false", "off", "no", "0"}


@app.command("show")
def show(ctx: typer.Context, json_out: bool = JsonOpt) -> None:
    """Show every cluster setting."""
    response = c.client(ctx).get("/cluster/settings")
    settings = parse(response, ClusterSettings)
    c.emit(ctx, json_out, response.json(), lambda: c.out.print(settings_table(settings)))


@app.command("set")
def set_setting(
    ctx: typer.Context,
    key: str = typer.Argument(..., metavar="KEY", help="e.g. allow_insecure_migration"),
    value: str = typer.Argument(..., metavar="VALUE", help="true or false"),
    json_out: bool = JsonOpt,
) -> None:
    """Change a cluster setting (admin).

    allow_insecure_migration true lets migrations ask for transport insecure (plain TCP).
    Hosts accept such streams only after their configuration is reinstalled:
    `corral host rotate-certs NAME`.
    """
    known = ClusterSettingsUpdate.model_fields
    if key not in known:
        c.usage_error(f"unknown setting {key!r}; known: {', '.join(sorted(known))}", "KEY")
    lowered = value.lower()
    if lowered not in _TRUE | _FALSE:
        c.usage_error(f"{key} takes true or false, not {value!r}", "VALUE")
    body = ClusterSettingsUpdate.model_validate({key: lowered in _TRUE})
    response = c.client(ctx).patch(
        "/cluster/settings", json=body.model_dump(mode="json", exclude_none=True)
    )
    settings = parse(response, ClusterSettings)
    note = ""
    if key == "allow_insecure_migration" and settings.allow_insecure_migration:
        note = (
            "; hosts accept unencrypted migration streams once their configuration is "
            "reinstalled: `corral host rotate-certs NAME` for each"
        )
    c.emit(
        ctx,
        json_out,
        response.json(),
        lambda: c.info(f"{key} = {str(getattr(settings, key)).lower()}{note}"),
    )
