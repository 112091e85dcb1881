"""``corral power …``: the placement policy's plan, applying it, the hosts' power state."""

from __future__ import annotations

import typer
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from corral.cli import context as c
from corral.cli.client import parse
from corral.cli.task import JsonOpt, follow_task
from corral.model.power import ApplyRequest, PowerPlan, PowerStatus

app = typer.Typer(
    help="Power-aware placement: plans, applying them, host power.",
    no_args_is_help=True,
    cls=c.HelpGroup,
)


#: What the watts of a plan and of the status are: two estimates from different inputs, so
#: their totals differ (a plan compares placements; the status shows the hosts as they run).
PLAN_WATTS = (
    "modelled: the hosts' power models at the CPU use of the VMs on them, as placed now and "
    "after the plan; `corral power status` models each host's measured CPU use instead "
    "(everything it runs), so its total differs"
)
STATUS_WATTS = (
    "WATTS: the host's power model at its measured CPU use (everything it runs); "
    "`corral power plan` counts only the VMs' CPU use, to compare placements"
)


def _aside(text: str) -> Padding:
    """An explanation under a figure: indented, dim, wrapped at the terminal's width."""
    return Padding(Text(text, style="dim"), (0, 0, 0, 2), expand=False)


def _table(*columns: str) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def plan_table(plan: PowerPlan) -> Table:
    """One row per step, in the order apply runs them."""
    table = _table("#", "STEP", "HOST / VM", "DETAIL")
    steps = 0
    for host in plan.plan.wake:
        steps += 1
        table.add_row(str(steps), "wake", Text(host), "switch on through its driver")
    for move in plan.plan.migrations:
        steps += 1
        where = f"{move.vm}: {move.source} → {move.target}"
        detail = f"{move.memory_mib} MiB, {move.vcpus} vCPUs; {move.reason}"
        table.add_row(str(steps), "migrate", Text(where), Text(detail))
    for host in plan.plan.standby:
        steps += 1
        table.add_row(str(steps), "standby", Text(host), "switch off through its driver")
    return table


def _render_plan(plan: PowerPlan) -> None:
    p = plan.plan
    saved = p.watts_before - p.watts_after
    c.out.print(f"plan {plan.id} ({plan.mode.value} mode)", markup=False)
    if p.is_empty:
        c.out.print("nothing to do: the cluster is as the policy wants it", markup=False)
    else:
        c.out.print(plan_table(plan))
    change = f"{saved:.0f} W saved" if saved >= 0 else f"{-saved:.0f} W more"
    c.out.print(
        f"estimated power: {p.watts_before:.0f} W now → {p.watts_after:.0f} W after ({change})",
        markup=False,
    )
    c.out.print(_aside(PLAN_WATTS))
    for reason in p.reasons:
        c.out.print(f"  - {reason}", markup=False)
    for note in plan.notes:
        c.out.print(f"  note: {note}", markup=False, style="dim")
    if not p.is_empty:
        c.out.print(f"apply it with: corral power apply --plan {plan.id}", markup=False)


@app.command("plan")
def plan(ctx: typer.Context, json_out: bool = JsonOpt) -> None:
    """Show what the placement policy would do now, with estimated watts before and after."""
    response = c.client(ctx).get("/power/plan")
    found = parse(response, PowerPlan)
    c.emit(ctx, json_out, response.json(), lambda: _render_plan(found))


@app.command("apply")
def apply(
    ctx: typer.Context,
    plan_id: str | None = typer.Option(
        None, "--plan", metavar="ID", help="The plan you reviewed (default: plan now)."
    ),
    no_wait: bool = typer.Option(False, "--no-wait", help="Print the task id instead of waiting."),
    json_out: bool = JsonOpt,
) -> None:
    """Apply a plan as a task (operators): wake hosts, live-migrate, put hosts in standby. A
    plan that no longer fits the cluster is not executed: Corral plans again."""
    body = ApplyRequest(plan_id=plan_id) if plan_id else ApplyRequest()
    response = c.client(ctx).post("/power/apply", json=body.model_dump(exclude_none=True))
    task = follow_task(ctx, response, no_wait=no_wait, json_flag=json_out)
    if task is None:
        return
    result = task.result or {}

    def render() -> None:
        if result.get("replanned"):
            why = "; ".join(result.get("stale_reasons", []))
            c.info(f"the plan was stale ({why}): Corral planned again and applied that")
        moves = result.get("migrations", [])
        woken = ", ".join(result.get("woken", [])) or "no host"
        asleep = ", ".join(result.get("standby", [])) or "none"
        c.info(
            f"applied: woke {woken}, {len(moves)} migration(s), standby {asleep}; about "
            f"{result.get('watts_after', 0):.0f} W (was {result.get('watts_before', 0):.0f} W)"
        )

    c.emit(ctx, json_out, task.model_dump(mode="json"), render)


@app.command("status")
def status(ctx: typer.Context, json_out: bool = JsonOpt) -> None:
    """Each host's power state, driver, utilisation and estimated watts; the mode."""
    response = c.client(ctx).get("/power/status")
    found = parse(response, PowerStatus)

    def render() -> None:
        table = _table("HOST", "STATUS", "DRIVER", "ON/OFF", "CPU", "WATTS")
        for host in found.hosts:
            can = ("on" if host.can_power_on else "") + ("/off" if host.can_power_off else "")
            cpu = f"{host.cpu * 100:.0f} %" if host.cpu is not None else "-"
            table.add_row(
                Text(host.name),
                Text(host.status.value),
                Text(host.driver.value if host.driver else "-"),
                Text(can.strip("/") or "-"),
                cpu,
                f"{host.watts:.0f}",
            )
        c.out.print(table)
        running = f"; power task {found.running_task} running" if found.running_task else ""
        c.info(
            f"mode {found.mode.value}, policy {found.placement_policy}, "
            f"about {found.watts:.0f} W in all{running}"
        )
        c.out.print(_aside(STATUS_WATTS))

    c.emit(ctx, json_out, response.json(), render)
