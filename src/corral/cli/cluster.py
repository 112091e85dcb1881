"""``corral cluster …``: cluster-wide settings (admins change them; every change is audited)."""

from __future__ import annotations

from enum import StrEnum

import typer
from pydantic import ValidationError

from corral.cli import context as c
from corral.cli.client import parse
from corral.cli.output import settings_table
from corral.cli.task import JsonOpt
from corral.cli.units import validation_message
from corral.model.cluster import ClusterSettings, ClusterSettingsUpdate

app = typer.Typer(help="Cluster-wide settings.", no_args_is_help=True, cls=c.HelpGroup)

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
    value: str = typer.Argument(..., metavar="VALUE", help="true/false, a number or a name"),
    json_out: bool = JsonOpt,
) -> None:
    """Change a cluster setting (admin).

    allow_insecure_migration true lets migrations ask for transport insecure (plain TCP).
    Hosts accept such streams only after their configuration is reinstalled:
    `corral host rotate-certs NAME`. power_policy auto lets Corral apply power plans by
    itself; placement_policy, high_utilisation, low_utilisation, hosts_in_reserve,
    sustained_minutes and the overcommit ratios are the planner's knobs; power_idle_w,
    power_max_w and power_standby_w the default power model.
    """
    known = ClusterSettingsUpdate.model_fields
    if key not in known:
        c.usage_error(f"unknown setting {key!r}; known: {', '.join(sorted(known))}", "KEY")
    try:
        body = ClusterSettingsUpdate.model_validate({key: _typed(key, value)})
    except ValidationError as exc:
        c.usage_error(validation_message(exc), "VALUE")
    response = c.client(ctx).patch(
        "/cluster/settings", json=body.model_dump(mode="json", exclude_none=True)
    )
    settings = parse(response, ClusterSettings)
    note = ""
    shown = getattr(settings, key)
    if key == "allow_insecure_migration" and settings.allow_insecure_migration:
        note = (
            "; hosts accept unencrypted migration streams once their configuration is "
            "reinstalled: `corral host rotate-certs NAME` for each"
        )
    c.emit(
        ctx,
        json_out,
        response.json(),
        lambda: c.info(f"{key} = {str(shown).lower() if isinstance(shown, bool) else shown}{note}"),
    )


def _typed(key: str, value: str) -> object:
    """The command line's text as the setting's type (bool, int, float or a name)."""
    current = ClusterSettings.model_fields[key].default
    lowered = value.lower()
    if isinstance(current, bool):
        if lowered not in _TRUE | _FALSE:
            c.usage_error(f"{key} takes true or false, not {value!r}", "VALUE")
        return lowered in _TRUE
    if isinstance(current, int | float) and not isinstance(current, StrEnum):
        try:
            number = float(value)
        except ValueError:
            c.usage_error(f"{key} takes a number, not {value!r}", "VALUE")
        if isinstance(current, int) and not isinstance(current, float):
            if not number.is_integer():
                c.usage_error(f"{key} takes a whole number, not {value!r}", "VALUE")
            return int(number)
        return number
    return value
