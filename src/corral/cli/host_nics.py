"""``corral host nics|label-nic|unlabel-nic``: host NICs and the labels bridge networks name."""

from __future__ import annotations

import typer

from corral.cli import context as c
from corral.cli import pages
from corral.cli.client import seg
from corral.cli.network_output import nic_table
from corral.cli.task import JsonOpt
from corral.model.network import HostNic

HostArg = typer.Argument(..., metavar="HOST", help="The host's name in Corral.")
NicArg = typer.Argument(..., metavar="NIC", help="The NIC's name on that host (eth0, enp3s0).")
LabelArg = typer.Argument(..., metavar="LABEL", help="A label bridge networks name (lan).")


def nics(ctx: typer.Context, host: str = HostArg, json_out: bool = JsonOpt) -> None:
    """List a host's NICs (as libvirt sees them) and their labels."""
    path = f"/hosts/{seg(host)}/nics"
    listing = pages.fetch(c.client(ctx), path, {}, limit=None, every=True, what="NICs")
    found = listing.parsed(HostNic)
    c.emit(ctx, json_out, listing.json(), lambda: c.out.print(nic_table(found)))


def label_nic(
    ctx: typer.Context, host: str = HostArg, nic: str = NicArg, label: str = LabelArg
) -> None:
    """Put a label on a host's NIC (admins); bridge networks on that label follow it."""
    c.client(ctx).request("PUT", f"/hosts/{seg(host)}/nics/{seg(nic)}/labels/{seg(label)}")
    c.info(f"NIC {nic} of host {host} is labelled {label}")


def unlabel_nic(
    ctx: typer.Context, host: str = HostArg, nic: str = NicArg, label: str = LabelArg
) -> None:
    """Take a label off a host's NIC (admins)."""
    c.client(ctx).delete(f"/hosts/{seg(host)}/nics/{seg(nic)}/labels/{seg(label)}")
    c.info(f"NIC {nic} of host {host} is no longer labelled {label}")


def register(app: typer.Typer) -> None:
    app.command("nics")(nics)
    app.command("label-nic")(label_nic)
    app.command("unlabel-nic")(unlabel_nic)
