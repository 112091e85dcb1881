"""``corral template create|list|show|delete``: templates made from shut-off VMs (new VMs
from them: ``corral vm create NAME --template T``)."""

from __future__ import annotations

import typer
from rich.table import Table

from corral.cli import context as c
from corral.cli.client import parse, parse_list, seg
from corral.cli.context import JsonOpt
from corral.cli.tables import when
from corral.model.template import TemplateInfo

app = typer.Typer(
    help="Templates: a shut-off VM's disks frozen as bases, new VMs made from them.",
    no_args_is_help=True,
    cls=c.HelpGroup,
)


def _details(t: TemplateInfo) -> str:
    disks = ", ".join(f"{d.target}: {d.volume}" for d in t.disks)
    lines = [
        f"template {t.name}" + (f" ({t.description})" if t.description else ""),
        f"  from VM {t.source_vm} on host {t.host}, by {t.created_by} {when(t.created_at)}",
        f"  {t.arch}, {t.vcpus} vCPUs, {t.memory_mib} MiB",
        f"  bases: {disks}",
        f"  used by: {', '.join(t.used_by) or 'nothing'}",
    ]
    return "\n".join(lines)


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The template's name."),
    from_vm: str = typer.Option(
        ..., "--from-vm", metavar="VM", help="A shut-off VM: its disks become the bases."
    ),
    description: str = typer.Option("", "--description", help="Free text."),
    json_out: bool = JsonOpt,
) -> None:
    """Make template NAME of a shut-off VM.

    The VM's disks become read-only bases on its host and the VM goes on on an overlay of
    each (it keeps working; the bases never change again). Not sealed: machine-id and SSH host
    keys are the VM's (new VMs from it share them until you regenerate them)."""
    body = {"name": name, "from_vm": from_vm, "description": description}
    response = c.client(ctx).post("/templates", json=body)
    made = parse(response, TemplateInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.info(_details(made)))


@app.command("list")
def list_templates(ctx: typer.Context, json_out: bool = JsonOpt) -> None:
    """The templates."""
    response = c.client(ctx).get("/templates")
    found = parse_list(response, TemplateInfo)

    def render() -> None:
        table = Table("NAME", "HOST", "ARCH", "VCPUS", "MEMORY", "DISKS", "FROM VM", box=None)
        for t in found:
            table.add_row(
                t.name, t.host, t.arch, str(t.vcpus), f"{t.memory_mib} MiB",
                str(len(t.disks)), t.source_vm,
            )  # fmt: skip
        c.out.print(table)

    c.emit(ctx, json_out, response.json(), render)


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The template."),
    json_out: bool = JsonOpt,
) -> None:
    """A template, and the VMs standing on its bases."""
    response = c.client(ctx).get(f"/templates/{seg(name)}")
    found = parse(response, TemplateInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.info(_details(found)))


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The template."),
) -> None:
    """Delete a template and its base volumes (refused while VMs stand on them)."""
    c.client(ctx).delete(f"/templates/{seg(name)}")
    c.info(f"deleted template {name}")
