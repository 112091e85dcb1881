"""``corral host …``: the libvirt hosts Corral manages."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from corral.cli import context as c
from corral.cli.client import parse, parse_list, seg
from corral.cli.output import host_details, host_table
from corral.cli.task import JsonOpt
from corral.cli.units import validation_message
from corral.model.host import HostCreate, HostInfo
from corral.model.vm import Accelerator

app = typer.Typer(help="Hypervisor hosts (libvirt daemons).", no_args_is_help=True)

NameArg = typer.Argument(..., metavar="NAME", help="The host's name in Corral.")


@app.command("list")
def list_hosts(ctx: typer.Context, json_out: bool = JsonOpt) -> None:
    """List hosts, their connection state and capacity."""
    response = c.client(ctx).get("/hosts")
    hosts = parse_list(response, HostInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.out.print(host_table(hosts)))


@app.command("show")
def show(ctx: typer.Context, name: str = NameArg, json_out: bool = JsonOpt) -> None:
    """Show one host and what libvirt reports about it."""
    response = c.client(ctx).get(f"/hosts/{seg(name)}")
    host = parse(response, HostInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.out.print(host_details(host)))


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = NameArg,
    uri: str = typer.Argument(..., metavar="URI", help="libvirt URI, e.g. qemu+tls://h2/system."),
    accelerator: Accelerator | None = typer.Option(
        None, "--accelerator", help="Force kvm or tcg on this host (default: best available)."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Add a host (admin)."""
    try:
        body = HostCreate(name=name, uri=uri, accelerator=accelerator)
    except ValidationError as exc:
        c.usage_error(validation_message(exc))
    response = c.client(ctx).post("/hosts", json=body.model_dump(mode="json", exclude_none=True))
    host = parse(response, HostInfo)
    state = "connected" if host.connected else f"not connected: {host.last_error or 'unknown'}"
    c.emit(ctx, json_out, response.json(), lambda: c.info(f"added host {host.name} ({state})"))


@app.command("remove")
def remove(ctx: typer.Context, name: str = NameArg) -> None:
    """Remove a host without VMs (admin)."""
    c.client(ctx).delete(f"/hosts/{seg(name)}")
    c.info(f"removed host {name}")
