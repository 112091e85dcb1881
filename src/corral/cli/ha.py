"""``corral vm ha`` (a VM's high availability) and ``corral ha status`` (each host's HA state
and the HA VMs waiting for a host)."""

from __future__ import annotations

import typer
from rich.table import Table

from corral.cli import context as c
from corral.cli.client import parse, seg
from corral.cli.context import JsonOpt
from corral.cli.tables import when
from corral.model.ha import DEFAULT_PRIORITY, HaStatus, VmHaInfo


def _vm_text(info: VmHaInfo) -> str:
    if not info.enabled:
        return f"VM {info.vm}: HA off"
    text = f"VM {info.vm}: HA on, priority {info.priority}"
    if info.definition_saved_at is not None:
        text += f", definition saved {when(info.definition_saved_at)}"
    if info.waiting:
        text += f"\nwaiting to be restarted: {info.waiting}"
    return text


def vm_ha(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The VM."),
    state: str | None = typer.Argument(
        None, metavar="[on|off]", help="on: restart it elsewhere when its host dies; off: not."
    ),
    priority: int = typer.Option(
        DEFAULT_PRIORITY, "--priority", min=0, max=100, help="Restart order, higher first."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Show or set a VM's high availability (restart elsewhere).

    On, the VM is restarted on another host when its host dies (after Corral proved that
    host off); every disk must be on a shared storage domain."""
    client = c.client(ctx)
    if state is None:
        response = client.get(f"/vms/{seg(name)}/ha")
    elif state in ("on", "off"):
        body = {"enabled": state == "on", "priority": priority}
        response = client.request("PUT", f"/vms/{seg(name)}/ha", json=body)
    else:
        c.usage_error("say on or off", "state")
    info = parse(response, VmHaInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.info(_vm_text(info)))


app = typer.Typer(
    help="High availability: hosts' HA states, VMs waiting.", no_args_is_help=True, cls=c.HelpGroup
)


@app.command("status")
def status(ctx: typer.Context, json_out: bool = JsonOpt) -> None:
    """Each host's HA state and the HA VMs waiting for a host.

    States: ok, suspect (silent), fencing (being proven off), fenced, recovering."""
    response = c.client(ctx).get("/ha")
    found = parse(response, HaStatus)

    def render() -> None:
        table = Table("HOST", "HA STATE", "HA VMS", "HEARTBEAT", "SINCE", "REASON", box=None)
        for host in found.hosts:
            table.add_row(
                host.host, host.state.value, str(host.ha_vms), host.heartbeat or "-",
                when(host.since), host.reason or "-",
            )  # fmt: skip
        c.out.print(table)
        for vm in found.waiting:
            c.out.print(f"waiting: VM {vm.vm} (priority {vm.priority}): {vm.waiting}")

    c.emit(ctx, json_out, response.json(), render)
