"""The Power page: the placement policy's plan (watts before and after, reasons, Apply for
operators), the mode, each host's power state, and plots of the last hours — utilisation per
host, the cluster's estimated watts, the migrations and host switches the policy made."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from corral.services.runtime import Services
from corral.web.charts import add_markers, line_chart
from corral.web.page_auth import PageOperator, PageViewer
from corral.web.templating import render

router = APIRouter(include_in_schema=False)

HOURS = (1, 6, 24)


async def _context(svc: Services, hours: int) -> dict[str, Any]:
    hours = hours if hours in HOURS else 1
    plan = await svc.power.planner.plan()
    status = await svc.power.status.status()
    history = await svc.power.status.history(hours)
    since, until = history.since, history.until
    cpu = {h: [(at, v * 100) for at, v in points] for h, points in history.cpu.items()}
    utilisation = line_chart("CPU utilisation per host", "%", cpu, since, until, top=100)
    watts = line_chart(
        "Estimated power of the cluster", "W", {"cluster": history.watts}, since, until
    )
    events = [(m.at, f"{m.vm}: {m.source} → {m.target} ({m.by})") for m in history.moves]
    events += [
        (s.at, f"{s.host} {'woken' if s.on else 'to standby'} ({s.by})") for s in history.switches
    ]
    for chart in (utilisation, watts):
        add_markers(chart, events, since, until)
    return {
        "active": "power",
        "plan": plan,
        "status": status,
        "charts": [utilisation, watts],
        "moves": sorted(history.moves, key=lambda m: m.at, reverse=True)[:20],
        "switches": sorted(history.switches, key=lambda s: s.at, reverse=True)[:20],
        "hours": hours,
        "hour_choices": HOURS,
    }


@router.get("/power", name="ui.power")
async def power_page(request: Request, _: PageViewer, hours: int = 1) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "power.html", await _context(svc, hours))


@router.get("/ui/fragments/power", name="ui.fragment.power")
async def power_fragment(request: Request, _: PageViewer, hours: int = 1) -> HTMLResponse:
    svc: Services = request.app.state.services
    return render(request, "fragments/power.html", await _context(svc, hours))


@router.post("/ui/power/apply", name="ui.power.apply")
async def apply_plan(
    request: Request,
    who: PageOperator,
    plan_id: Annotated[str, Form(max_length=32)] = "",
    hours: Annotated[int, Form()] = 1,
) -> HTMLResponse:
    svc: Services = request.app.state.services
    request.state.audit_target = plan_id or "cluster"
    task = await svc.power.apply.start(who, plan_id or None)
    context = await _context(svc, hours)
    context["notice"] = f"applying the plan: task {task.id}"
    return render(request, "fragments/power.html", context)
