"""``corral vm edit`` and ``corral vm disk|nic attach|detach``: change a VM after creation.

Each prints what changed and how it reached the VM: live (the running guest has it now),
at the next start (the running VM gets it when next started), or offline (the VM is shut off).
"""

from __future__ import annotations

import re
from typing import Any

import typer
from pydantic import ValidationError

from corral.cli import context as c
from corral.cli.client import parse, seg
from corral.cli.output import vm_details
from corral.cli.task import JsonOpt
from corral.cli.units import (
    DISK_SIZE_HELP,
    MEMORY_HELP,
    parse_disk_size_gib,
    parse_memory_mib,
    parse_nic_spec,
    validation_message,
)
from corral.model.arch import CpuTopology
from corral.model.vm import DiskBus
from corral.model.vm_edit import (
    Applied,
    ChangeMode,
    DiskAttachRequest,
    NicAttachRequest,
    VmChange,
    VmEdit,
)

NameArg = typer.Argument(..., metavar="NAME", help="The VM's name.")
LiveOpt = typer.Option(False, "--live", help="Now, or fail if the running VM cannot take it.")
NextStartOpt = typer.Option(
    False, "--next-start", help="Only from the VM's next start on (the running guest stays)."
)

_APPLIED = {
    Applied.LIVE: "live",
    Applied.NEXT_START: "at its next start (shut it down and start it)",
    Applied.OFFLINE: "in its definition (it is shut off)",
}
_TOPOLOGY = re.compile(r"^\s*(\d+)\s*[x*:,]\s*(\d+)\s*[x*:,]\s*(\d+)\s*$")

disk_app = typer.Typer(
    help="Attach and detach a VM's disks.", no_args_is_help=True, cls=c.HelpGroup
)
nic_app = typer.Typer(
    help="Attach and detach a VM's network interfaces.", no_args_is_help=True, cls=c.HelpGroup
)


def parse_topology(text: str) -> CpuTopology:
    """``SOCKETSxCORESxTHREADS``, e.g. ``4x8x2``."""
    match = _TOPOLOGY.match(text)
    if match is None:
        raise ValueError(f"invalid topology {text!r}: use SOCKETSxCORESxTHREADS, e.g. 2x4x1")
    sockets, cores, threads = (int(g) for g in match.groups())
    try:
        return CpuTopology(sockets=sockets, cores=cores, threads=threads)
    except ValidationError as exc:
        raise ValueError(f"invalid topology {text!r}: {validation_message(exc)}") from None


def _mode(live: bool, next_start: bool) -> ChangeMode | None:
    if live and next_start:
        c.usage_error("give --live or --next-start, not both", "--live")
    if live:
        return ChangeMode.LIVE
    return ChangeMode.NEXT_START if next_start else None


def _parsed(what: str, func: Any, text: str | None) -> Any:
    if text is None:
        return None
    try:
        return func(text)
    except ValueError as exc:
        c.usage_error(str(exc), what)


def _change(
    ctx: typer.Context,
    json_out: bool,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, str] | None = None,
    show_vm: bool = False,
) -> None:
    """Send one change to the API and report what it did (and how: live, next start…)."""
    response = c.client(ctx).request(method, path, json=body, params=params)
    change = parse(response, VmChange)

    def render() -> None:
        what = "; ".join(change.changes) or "nothing to change"
        c.info(f"VM {change.vm.name}: {what} — {_APPLIED[change.applied]}")
        if show_vm:
            c.out.print(vm_details(change.vm))

    c.emit(ctx, json_out, change.model_dump(mode="json"), render)


def edit(
    ctx: typer.Context,
    name: str = NameArg,
    vcpus: int | None = typer.Option(None, "--vcpus", min=1, max=512, help="vCPUs."),
    max_vcpus: int | None = typer.Option(
        None, "--max-vcpus", min=1, max=512, help="vCPUs it can get while running (next start)."
    ),
    memory: str | None = typer.Option(
        None, "--memory", help=f"Memory, e.g. 512M or 2G ({MEMORY_HELP})."
    ),
    max_memory: str | None = typer.Option(
        None,
        "--max-memory",
        help="Memory it can get while running (next start), e.g. 4G (bare number: MiB).",
    ),
    topology: str | None = typer.Option(
        None, "--topology", metavar="SxCxT", help="CPU sockets x cores x threads (next start)."
    ),
    description: str | None = typer.Option(None, "--description", help="Free text."),
    live: bool = LiveOpt,
    next_start: bool = NextStartOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Change a VM's vCPUs, memory, maximums, CPU topology or description.

    A running VM gets vCPUs and memory live within the maximums set at creation, and anything
    else at its next start; a shut-off VM's definition changes.
    """
    try:
        body = VmEdit(
            vcpus=vcpus,
            max_vcpus=max_vcpus,
            memory_mib=_parsed("--memory", parse_memory_mib, memory),
            max_memory_mib=_parsed("--max-memory", parse_memory_mib, max_memory),
            topology=_parsed("--topology", parse_topology, topology),
            description=description,
            mode=_mode(live, next_start),
        )
    except ValidationError as exc:
        c.usage_error(validation_message(exc))
    payload = body.model_dump(mode="json", exclude_none=True)
    if not payload or list(payload) == ["mode"]:
        c.usage_error("say what to change: --vcpus, --memory, --description …")
    _change(ctx, json_out, "PATCH", f"/vms/{seg(name)}", body=payload, show_vm=True)


@disk_app.command("attach")
def disk_attach(
    ctx: typer.Context,
    name: str = NameArg,
    disk: str = typer.Argument(..., metavar="DISK", help="The new disk's name in the VM."),
    size: str | None = typer.Option(
        None, "--size", help=f"A new blank disk of this size, e.g. 10G ({DISK_SIZE_HELP})."
    ),
    base: str | None = typer.Option(None, "--base", metavar="IMAGE", help="A linked clone."),
    volume: str | None = typer.Option(
        None, "--volume", metavar="VOLUME", help="An unused volume of Corral's pool."
    ),
    bus: DiskBus = typer.Option(DiskBus.VIRTIO, "--bus", help="virtio, scsi, sata or ide."),
    live: bool = LiveOpt,
    next_start: bool = NextStartOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Add a disk (virtio and SCSI go into a running VM at once, SATA and IDE at its next
    start)."""
    if sum(x is not None for x in (size, base, volume)) != 1:
        c.usage_error("give exactly one of --size, --base or --volume", "--size")
    try:
        body = DiskAttachRequest(
            name=disk,
            size_gib=_parsed("--size", parse_disk_size_gib, size),
            base_image=base,
            volume=volume,
            bus=bus,
            mode=_mode(live, next_start),
        )
    except ValidationError as exc:
        c.usage_error(validation_message(exc))
    payload = body.model_dump(mode="json", exclude_none=True)
    _change(ctx, json_out, "POST", f"/vms/{seg(name)}/disks", body=payload)


@disk_app.command("detach")
def disk_detach(
    ctx: typer.Context,
    name: str = NameArg,
    disk: str = typer.Argument(..., metavar="DISK", help="The disk's name or target (vdb)."),
    delete_volume: bool = typer.Option(
        False, "--delete-volume", help="Also delete its volume (cannot be undone)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    live: bool = LiveOpt,
    next_start: bool = NextStartOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Remove a disk from a VM (its volume stays unless --delete-volume)."""
    mode = _mode(live, next_start)
    if not yes:
        what = " and delete its volume" if delete_volume else " (the volume is kept)"
        typer.confirm(f"Detach disk {disk} from VM {name}{what}?", abort=True, err=True)
    params: dict[str, str] = {"delete_volume": "true"} if delete_volume else {}
    if mode is not None:
        params["mode"] = mode.value
    _change(ctx, json_out, "DELETE", f"/vms/{seg(name)}/disks/{seg(disk)}", params=params)


@nic_app.command("attach")
def nic_attach(
    ctx: typer.Context,
    name: str = NameArg,
    network: str = typer.Option(
        "nat", "--network", help="nat, user or a libvirt network[,model=…][,mac=…]."
    ),
    model: str | None = typer.Option(None, "--model", help="virtio, e1000 or rtl8139."),
    mac: str | None = typer.Option(None, "--mac", help="MAC address (default: a new one)."),
    live: bool = LiveOpt,
    next_start: bool = NextStartOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Add a network interface (plugged into a running VM at once)."""
    spec = _parsed("--network", parse_nic_spec, network)
    values = spec.model_dump(exclude_none=True)
    values.update({k: v for k, v in (("model", model), ("mac", mac and mac.lower())) if v})
    try:
        body = NicAttachRequest(**values, mode=_mode(live, next_start))
    except ValidationError as exc:
        c.usage_error(validation_message(exc))
    payload = body.model_dump(mode="json", exclude_none=True)
    _change(ctx, json_out, "POST", f"/vms/{seg(name)}/nics", body=payload)


@nic_app.command("detach")
def nic_detach(
    ctx: typer.Context,
    name: str = NameArg,
    mac: str = typer.Argument(..., metavar="MAC", help="The interface's MAC (`corral vm show`)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    live: bool = LiveOpt,
    next_start: bool = NextStartOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Remove a network interface from a VM."""
    mode = _mode(live, next_start)
    if not yes:
        typer.confirm(f"Detach network interface {mac} from VM {name}?", abort=True, err=True)
    params = {"mode": mode.value} if mode is not None else None
    _change(ctx, json_out, "DELETE", f"/vms/{seg(name)}/nics/{mac.lower()}", params=params)
