"""``corral vm …``: list, inspect and operate virtual machines.

``vm list`` is defined here and imports only what it needs (Typer, Rich, httpx: no pydantic
models, see ``tables.py``); every other ``vm`` command lives in its own module, loaded when it
runs (``lazy.py``). ``tests/unit/cli/test_cli_imports.py`` keeps it that way.
"""

from __future__ import annotations

import typer

from corral.cli import context as c
from corral.cli import pages
from corral.cli.context import JsonOpt
from corral.cli.lazy import LazyCommand
from corral.cli.tables import vm_rows, vm_table


def _ops(name: str, summary: str) -> LazyCommand:
    return LazyCommand("corral.cli.vm_ops", "app", summary, command=name)


#: The ``vm`` commands in the order ``corral vm --help`` shows them.
LAZY: dict[str, LazyCommand] = {
    "list": LazyCommand("corral.cli.vm", "list_vms", "List VMs with their state, size and uptime."),
    "create": LazyCommand(
        "corral.cli.vm_create", "create", "Create a VM (and start it with --start)."
    ),
    "migrate": LazyCommand(
        "corral.cli.vm_migrate",
        "migrate",
        "Live-migrate a running VM to another host (encrypted with TLS unless told otherwise).",
    ),
    "move-disk": LazyCommand(
        "corral.cli.vm_move_disk",
        "move_disk",
        "Move a disk of a VM to another storage domain its host reaches (live if it runs).",
    ),
    "edit": LazyCommand(
        "corral.cli.vm_changes",
        "edit",
        "Change a VM's vCPUs, memory, maximums, CPU topology or description.",
    ),
    "disk": LazyCommand("corral.cli.vm_changes", "disk_app", "Attach and detach a VM's disks."),
    "cloud-init": LazyCommand(
        "corral.cli.vm_cloud_init", "app", "Show and replace a VM's cloud-init settings."
    ),
    "nic": LazyCommand(
        "corral.cli.vm_changes", "nic_app", "Attach and detach a VM's network interfaces."
    ),
    "show": _ops(
        "show",
        "Show one VM, its disks and network interfaces (and what changes at its next start).",
    ),
    "start": _ops("start", "Start a shut-off VM."),
    "stop": _ops("stop", "Force a VM off at once (like pulling the plug); see also `shutdown`."),
    "reboot": _ops("reboot", "Ask the guest to reboot."),
    "pause": _ops("pause", "Pause a running VM (its vCPUs stop; memory stays)."),
    "resume": _ops("resume", "Resume a paused VM."),
    "cdrom": _ops(
        "cdrom",
        "Change the CD-ROM media of a running or shut-off VM (a shut-off VM without a CD-ROM "
        "drive gets one).",
    ),
    "shutdown": _ops(
        "shutdown", "Shut a VM down gracefully (ACPI); fails after --timeout unless --force."
    ),
    "delete": _ops("delete", "Delete a shut-off VM (its disks too with --delete-disks)."),
    "clone": _ops("clone", "Make NEW a linked clone of the shut-off VM SRC."),
    "screenshot": _ops("screenshot", "Save a PNG screenshot of the VM's display."),
    "log": _ops("log", "Print the VM's serial console log."),
    "console": LazyCommand(
        "corral.cli.console",
        "console_command",
        "Attach to the VM's serial console (leave with Ctrl-]).",
    ),
    "type": LazyCommand(
        "corral.cli.vm_screen",
        "type_command",
        "Type TEXT on the VM's keyboard, then press --keys (e.g. `type web1 root --keys enter`).",
    ),
    "wait-screen": LazyCommand(
        "corral.cli.vm_screen",
        "wait_screen_command",
        "Wait until an image appears on the VM's screen; exit 1 if it does not within --timeout.",
    ),
    "snapshot": LazyCommand("corral.cli.snapshot", "app", "Snapshots of a VM."),
    "backup": LazyCommand(
        "corral.cli.backup",
        "vm_backup",
        "Back a VM up into a store: full the first time, then only what changed.",
    ),
    "ha": LazyCommand(
        "corral.cli.ha",
        "vm_ha",
        "Show or set a VM's high availability (restart elsewhere).",
    ),
}

app = typer.Typer(help="Virtual machines.", no_args_is_help=True, cls=c.lazy_group(LAZY))


def list_vms(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Only VMs on this host."),
    state: str | None = typer.Option(
        None, "--state", help="Only VMs in this state (running, shutoff, paused, missing…)."
    ),
    name_prefix: str | None = typer.Option(
        None, "--name-prefix", help="Only VMs whose name starts with this."
    ),
    arch: str | None = typer.Option(None, "--arch", help="Only VMs of this architecture."),
    sort: str = typer.Option(
        "name", "--sort", help="name, created, host or state; a leading - reverses it."
    ),
    limit: int | None = typer.Option(
        None,
        "--limit",
        min=1,
        max=1000,
        help="VMs per page (1-1000; default 100, with --all 1000).",
    ),
    cursor: str | None = typer.Option(
        None, "--cursor", help="Continue where a previous page ended (the cursor it printed)."
    ),
    every: bool = typer.Option(False, "--all", help="Every page, not only the first."),
    json_out: bool = JsonOpt,
) -> None:
    """List VMs with their state, size and uptime."""
    filters = {"host": host, "state": state, "name_prefix": name_prefix, "arch": arch}
    listing = pages.fetch(
        c.client(ctx),
        "/vms",
        {**filters, "sort": sort},
        limit=limit,
        cursor=cursor,
        every=every,
        what="VMs",
    )
    vms = listing.read(vm_rows, "list[VmInfo]")
    c.emit(ctx, json_out, listing.json(), lambda: c.out.print(vm_table(vms), soft_wrap=True))
    pages.hint_more(listing, "VMs")
