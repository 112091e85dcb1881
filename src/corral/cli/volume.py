"""``corral volume …``: the volumes of Corral's pool on each host (admins)."""

from __future__ import annotations

import typer

from corral.cli import context as c
from corral.cli.client import parse_list, seg
from corral.cli.output import volume_table
from corral.cli.task import JsonOpt
from corral.model.volume import VolumeInfo

app = typer.Typer(
    help="Volumes of each host's storage pool: find and delete what nothing uses (admins).",
    no_args_is_help=True,
    cls=c.HelpGroup,
)


@app.command("list")
def list_volumes(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Only this host's volumes."),
    json_out: bool = JsonOpt,
) -> None:
    """List the pool volumes of each host and the VMs using them.

    Every connected host's (or one host's); a volume nothing uses shows "unused"."""
    response = c.client(ctx).get("/volumes", {"host": host})
    volumes = parse_list(response, VolumeInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.out.print(volume_table(volumes)))


@app.command("delete")
def delete(
    ctx: typer.Context,
    host: str = typer.Argument(..., metavar="HOST", help="The host whose pool holds it."),
    name: str = typer.Argument(..., metavar="VOLUME", help="The volume's name."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a volume nothing uses.

    Refused while a VM uses it (directly or under a linked clone), for a library image (use
    `corral image delete`) and for the base of another volume."""
    if not yes:
        typer.confirm(f"Delete volume {name} on host {host}?", abort=True, err=True)
    c.client(ctx).delete(f"/hosts/{seg(host)}/volumes/{seg(name)}")
    c.info(f"deleted volume {name} on host {host}")
