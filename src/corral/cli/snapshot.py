"""``corral vm snapshot …``: snapshots of one VM."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from corral.cli import context as c
from corral.cli import pages
from corral.cli.client import parse, seg
from corral.cli.output import snapshot_table
from corral.cli.task import JsonOpt
from corral.cli.units import validation_message
from corral.model.vm import SnapshotInfo, SnapshotRequest, VmInfo

app = typer.Typer(help="Snapshots of a VM.", no_args_is_help=True, cls=c.HelpGroup)

VmArg = typer.Argument(..., metavar="VM", help="The VM's name.")
SnapArg = typer.Argument(..., metavar="SNAPSHOT", help="The snapshot's name.")


@app.command("create")
def create(
    ctx: typer.Context,
    vm: str = VmArg,
    name: str = SnapArg,
    description: str = typer.Option("", "--description", help="Free text."),
    json_out: bool = JsonOpt,
) -> None:
    """Take a snapshot of a VM."""
    try:
        body = SnapshotRequest(name=name, description=description).model_dump(mode="json")
    except ValidationError as exc:
        c.usage_error(validation_message(exc), "SNAPSHOT")
    response = c.client(ctx).post(f"/vms/{seg(vm)}/snapshots", json=body)
    snap = parse(response, SnapshotInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.info(f"created snapshot {snap.name} of {vm}"))


@app.command("list")
def list_snapshots(ctx: typer.Context, vm: str = VmArg, json_out: bool = JsonOpt) -> None:
    """List a VM's snapshots (* marks the current one)."""
    path = f"/vms/{seg(vm)}/snapshots"
    listing = pages.fetch(c.client(ctx), path, {}, limit=None, every=True, what="snapshots")
    snaps = listing.parsed(SnapshotInfo)
    c.emit(ctx, json_out, listing.json(), lambda: c.out.print(snapshot_table(snaps)))


@app.command("revert")
def revert(
    ctx: typer.Context, vm: str = VmArg, name: str = SnapArg, json_out: bool = JsonOpt
) -> None:
    """Revert a VM to a snapshot (its current state is lost)."""
    response = c.client(ctx).post(f"/vms/{seg(vm)}/snapshots/{seg(name)}/revert")
    info = parse(response, VmInfo)
    c.emit(
        ctx,
        json_out,
        response.json(),
        lambda: c.info(f"reverted VM {vm} to snapshot {name} ({info.state})"),
    )


@app.command("delete")
def delete(ctx: typer.Context, vm: str = VmArg, name: str = SnapArg) -> None:
    """Delete a snapshot (the VM itself is untouched)."""
    c.client(ctx).delete(f"/vms/{seg(vm)}/snapshots/{seg(name)}")
    c.info(f"deleted snapshot {name} of {vm}")
