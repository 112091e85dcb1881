"""``corral volume …``: the volumes of storage domains — each host's pool (``local``) and the
domains every host shares (admins)."""

from __future__ import annotations

import typer

from corral.cli import context as c
from corral.cli import pages
from corral.cli.client import parse, seg
from corral.cli.output import volume_table
from corral.cli.task import JsonOpt
from corral.cli.units import parse_disk_size_gib
from corral.model.volume import VolumeInfo

app = typer.Typer(
    help="Volumes of storage domains: list, create, resize, delete what nothing uses (admins).",
    no_args_is_help=True,
    cls=c.HelpGroup,
)

DomainOpt = typer.Option(
    None, "--domain", help="The storage domain (default: local, each host's pool)."
)


def _size_gib(text: str) -> float:
    try:
        return parse_disk_size_gib(text)
    except ValueError as exc:
        c.usage_error(str(exc), "--size")


@app.command("list")
def list_volumes(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Only this host's volumes (local)."),
    domain: str | None = DomainOpt,
    json_out: bool = JsonOpt,
) -> None:
    """List the volumes of a domain and the VMs using them.

    Without --domain: every connected host's pool (or one host's); a volume nothing
    uses shows "unused"."""
    path = "/volumes" if domain is None else f"/storage-domains/{seg(domain)}/volumes"
    client = c.client(ctx)
    listing = pages.fetch(client, path, {"host": host}, limit=None, every=True, what="volumes")
    volumes = listing.parsed(VolumeInfo)
    c.emit(ctx, json_out, listing.json(), lambda: c.out.print(volume_table(volumes)))


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="VOLUME", help="The new volume's name."),
    size: str = typer.Option(..., "--size", help="Its size, e.g. 10G (a bare number is GiB)."),
    domain: str = typer.Option("local", "--domain", help="The storage domain."),
    host: str | None = typer.Option(None, "--host", help="local: the host whose pool."),
    json_out: bool = JsonOpt,
) -> None:
    """Create a blank qcow2 volume in a storage domain.

    Refused when it is larger than the domain's free space."""
    body = {"name": name, "size_gib": _size_gib(size), "host": host}
    response = c.client(ctx).post(f"/storage-domains/{seg(domain)}/volumes", body)
    volume = parse(response, VolumeInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.out.print(volume_table([volume])))


@app.command("resize")
def resize(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="VOLUME", help="The volume's name."),
    size: str = typer.Option(..., "--size", help="The new size, e.g. 20G; only grows."),
    domain: str = typer.Option("local", "--domain", help="The storage domain."),
    host: str | None = typer.Option(None, "--host", help="local: the host whose pool."),
    json_out: bool = JsonOpt,
) -> None:
    """Grow a volume no VM uses."""
    body = {"size_gib": _size_gib(size), "host": host}
    path = f"/storage-domains/{seg(domain)}/volumes/{seg(name)}/resize"
    response = c.client(ctx).post(path, body)
    volume = parse(response, VolumeInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.out.print(volume_table([volume])))


@app.command("delete")
def delete(
    ctx: typer.Context,
    names: list[str] = typer.Argument(
        ..., metavar="[HOST] VOLUME", help="The host whose pool holds it (local), the volume."
    ),
    domain: str | None = DomainOpt,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a volume nothing uses.

    HOST VOLUME for each host's pool; VOLUME --domain NAME for a shared domain.
    Refused while a VM uses it (directly or under a linked clone), for a library
    image (use `corral image delete`) and for the base of another volume."""
    shared = domain is not None and domain != "local"
    if len(names) != (1 if shared else 2):
        c.usage_error("give HOST VOLUME, or VOLUME --domain NAME for a shared domain")
    name = names[-1]
    where = f"in storage domain {domain}" if shared else f"on host {names[0]}"
    if not yes:
        typer.confirm(f"Delete volume {name} {where}?", abort=True, err=True)
    if shared:
        c.client(ctx).delete(f"/storage-domains/{seg(domain or '')}/volumes/{seg(name)}")
    else:
        c.client(ctx).delete(f"/hosts/{seg(names[0])}/volumes/{seg(name)}")
    c.info(f"deleted volume {name} {where}")
