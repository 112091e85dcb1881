"""``corral template create|import|list|show|delete``: templates made from shut-off VMs or
disk images of the library (new VMs from them: ``corral vm create NAME --template T``)."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.table import Table

from corral.cli import context as c
from corral.cli.client import parse, parse_list, seg
from corral.cli.context import JsonOpt
from corral.cli.tables import when
from corral.cli.units import MEMORY_HELP, parse_memory_mib, parse_nic_spec, validation_message
from corral.model.template import TemplateImport, TemplateInfo

app = typer.Typer(
    help="Templates: a shut-off VM's disks or a disk image as bases, new VMs made from them.",
    no_args_is_help=True,
    cls=c.HelpGroup,
)


def _details(t: TemplateInfo) -> str:
    disks = ", ".join(f"{d.target}: {d.volume}" for d in t.disks)
    lines = [
        f"template {t.name}" + (f" ({t.description})" if t.description else ""),
        (f"  from image {t.source_image}" if t.source_image else f"  from VM {t.source_vm}")
        + f" on host {t.host}, by {t.created_by} {when(t.created_at)}",
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


@app.command("import")
def import_image(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The template's name."),
    image: str = typer.Option(
        ..., "--image", metavar="IMAGE", help="A disk image of a host's library (qcow2 or raw)."
    ),
    host: str | None = typer.Option(
        None, "--host", help="The host whose library holds it (default: wherever it is)."
    ),
    vcpus: int = typer.Option(1, "--vcpus", min=1, help="The VMs' vCPUs."),
    memory: str = typer.Option("1024", "--memory", help=f"The VMs' memory ({MEMORY_HELP})."),
    nic: list[str] = typer.Option(
        [], "--nic", help="A NIC (repeatable): NETWORK[,model=M] (default: one on nat)."
    ),
    arch: str | None = typer.Option(None, "--arch", help="The guest's architecture."),
    description: str = typer.Option("", "--description", help="Free text."),
    json_out: bool = JsonOpt,
) -> None:
    """Make template NAME of a disk image of the library (a cloud image, say).

    The image is the template's base as it is (never copied or changed, and it cannot be
    deleted while the template exists); its VMs get the settings given here."""
    try:
        nics = [parse_nic_spec(n) for n in nic] if nic else None
        body = TemplateImport.model_validate(
            {"name": name, "image": image, "host": host, "vcpus": vcpus,
             "memory_mib": parse_memory_mib(memory), "arch": arch, "description": description}
            | ({"nics": nics} if nics is not None else {})
        )  # fmt: skip
    except (ValidationError, ValueError) as exc:
        message = validation_message(exc) if isinstance(exc, ValidationError) else str(exc)
        c.usage_error(message, "NAME")
    response = c.client(ctx).post(
        "/template-imports", json=body.model_dump(mode="json", exclude_none=True)
    )
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
                str(len(t.disks)), t.source_vm or f"(image {t.source_image})",
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
