"""``corral network …``: cluster networks, declared once and realised on every host."""

from __future__ import annotations

import typer

from corral.cli import context as c
from corral.cli import pages
from corral.cli.client import parse, parse_list, seg
from corral.cli.network_output import network_details, network_table
from corral.cli.task import JsonOpt, follow_task
from corral.cli.transport import Response
from corral.model.network import NetworkInfo, NetworkKind

app = typer.Typer(
    help="Cluster networks: nat, isolated, bridge (on a labelled NIC) and vxlan, realised on "
    "every host (admins change them).",
    no_args_is_help=True,
    cls=c.HelpGroup,
)

NameArg = typer.Argument(..., metavar="NAME", help="The network's name.")
NoWait = typer.Option(False, "--no-wait", help="Print the task id instead of waiting.")


def _finish(
    ctx: typer.Context, response: Response, no_wait: bool, json_out: bool, name: str
) -> None:
    task = follow_task(ctx, response, no_wait=no_wait, json_flag=json_out)
    if task is None:
        return
    hosts = (task.result or {}).get("hosts", {})

    def render() -> None:
        for host, state in sorted(hosts.items()):
            c.out.print(f"{host}: {state}", markup=False)

    c.emit(ctx, json_out, task.model_dump(mode="json"), render)


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = NameArg,
    kind: NetworkKind = typer.Option(..., "--kind", help="nat, isolated, bridge or vxlan."),
    uplink: str | None = typer.Option(
        None, "--uplink", metavar="LABEL", help="bridge: the label of the NIC on each host."
    ),
    vni: int | None = typer.Option(None, "--vni", metavar="N", help="vxlan: the VNI."),
    vlan: int | None = typer.Option(
        None, "--vlan", metavar="N", help="bridge: an 802.1Q tag on the uplink."
    ),
    required: bool = typer.Option(
        False, "--required", help="Hosts lacking it take no VMs and no migrations."
    ),
    description: str = typer.Option("", "--description", help="Free text."),
    no_wait: bool = NoWait,
    json_out: bool = JsonOpt,
) -> None:
    """Declare a network and realise it on every connected host (a task)."""
    body: dict[str, object] = {"name": name, "kind": kind.value, "required": required}
    for key, value in (("uplink", uplink), ("vni", vni), ("vlan", vlan)):
        if value is not None:
            body[key] = value
    if description:
        body["description"] = description
    response = c.client(ctx).post("/networks", json=body)
    _finish(ctx, response, no_wait, json_out, name)


@app.command("list")
def list_networks(ctx: typer.Context, json_out: bool = JsonOpt) -> None:
    """List networks and their state on each host."""
    client = c.client(ctx)
    listing = pages.fetch(client, "/networks", {}, limit=None, every=True, what="networks")
    networks = listing.parsed(NetworkInfo)
    c.emit(ctx, json_out, listing.json(), lambda: c.out.print(network_table(networks)))


@app.command("show")
def show(ctx: typer.Context, name: str = NameArg, json_out: bool = JsonOpt) -> None:
    """Show one network and its state on each host (with the reason of a failure)."""
    response = c.client(ctx).get(f"/networks/{seg(name)}")
    net = parse(response, NetworkInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.out.print(network_details(net)))


@app.command("edit")
def edit(
    ctx: typer.Context,
    name: str = NameArg,
    required: bool | None = typer.Option(
        None, "--required/--optional", help="Whether hosts lacking it take no VMs."
    ),
    description: str | None = typer.Option(None, "--description", help="Free text."),
    uplink: str | None = typer.Option(
        None, "--uplink", metavar="LABEL", help="bridge: another NIC label."
    ),
    no_wait: bool = NoWait,
    json_out: bool = JsonOpt,
) -> None:
    """Change a network and apply it to every connected host again (a task)."""
    body = {
        k: v
        for k, v in (("required", required), ("description", description), ("uplink", uplink))
        if v is not None
    }
    response = c.client(ctx).patch(f"/networks/{seg(name)}", json=body)
    _finish(ctx, response, no_wait, json_out, name)


@app.command("apply")
def apply(
    ctx: typer.Context, name: str = NameArg, no_wait: bool = NoWait, json_out: bool = JsonOpt
) -> None:
    """Apply a network to every connected host again (after drift or a fixed failure)."""
    response = c.client(ctx).post(f"/networks/{seg(name)}/apply")
    _finish(ctx, response, no_wait, json_out, name)


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: str = NameArg,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    no_wait: bool = NoWait,
) -> None:
    """Delete a network no VM uses and remove it from every connected host (a task)."""
    if not yes:
        typer.confirm(f"Delete network {name}?", abort=True, err=True)
    response = c.client(ctx).delete(f"/networks/{seg(name)}")
    task = follow_task(ctx, response, no_wait=no_wait)
    if task is not None:
        c.info(f"deleted network {name}")


@app.command("check")
def check(ctx: typer.Context, json_out: bool = JsonOpt) -> None:
    """Compare every host with the networks as applied; mark what changed as drifted."""
    response = c.client(ctx).post("/network-checks")
    networks = parse_list(response, NetworkInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.out.print(network_table(networks)))
