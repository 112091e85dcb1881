"""Power-aware placement: the plan, applying it, the cluster's power state, and each host's
power driver (configure, switch on, switch off)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from corral.api.deps import Admin, Operator, Svc, Viewer
from corral.api.openapi import on_host, problem_responses
from corral.api.params import NamePath
from corral.api.routers.vms import ACCEPTED, accepted
from corral.model.power import (
    ApplyRequest,
    HostPowerInfo,
    HostPowerSettings,
    PowerPlan,
    PowerStatus,
)
from corral.model.task import TaskInfo

router = APIRouter()

_BUSY = (409, "another power task is running, or the host is in no state for it")


@router.get("/power/plan", name="power.plan", tags=["power"], responses=on_host())
async def power_plan(svc: Svc, _: Viewer) -> PowerPlan:
    """What the placement policy would do now: hosts to wake, migrations in a safe order,
    hosts to put in standby, estimated watts before and after, and the reasons. Kept for an
    hour under its id for ``POST /power/apply``."""
    return await svc.power.planner.plan()


@router.post(
    "/power/apply",
    name="power.apply",
    status_code=202,
    tags=["power"],
    response_model=TaskInfo,
    responses={
        **ACCEPTED,
        **problem_responses((404, "no plan with this id (expired)"), _BUSY),
    },
)
async def power_apply(
    request: Request, svc: Svc, who: Operator, body: ApplyRequest | None = None
) -> Response:
    """Apply a plan as a task (``plan_id``: the one reviewed; none: plan now). A plan that no
    longer fits the cluster is not executed: Corral plans again and applies that, and the
    task's result says why (``replanned``, ``stale_reasons``)."""
    plan_id = (body or ApplyRequest()).plan_id
    request.state.audit_target = plan_id or "cluster"
    return accepted(await svc.power.apply.start(who, plan_id))


@router.get("/power/status", name="power.status", tags=["power"])
async def power_status(svc: Svc, _: Viewer) -> PowerStatus:
    """Every host's power state, driver, newest utilisation and estimated watts; the mode."""
    return await svc.power.status.status()


@router.get("/hosts/{name}/power", name="host.power.show", tags=["hosts"])
async def show_host_power(name: NamePath, svc: Svc, _: Viewer) -> HostPowerInfo:
    """The host's power driver (secrets left out) and power model."""
    return await svc.power.config.info(name)


@router.put(
    "/hosts/{name}/power",
    name="host.power.configure",
    tags=["hosts"],
    responses=problem_responses(
        (
            409,
            "the driver cannot be used on this host (no SSH access, no password on record), "
            "the power model is out of order, or the host is in standby (driver removal)",
        )
    ),
)
async def configure_host_power(
    name: NamePath, body: HostPowerSettings, svc: Svc, who: Admin
) -> HostPowerInfo:
    """Set the host's power driver and power model (admin); ``driver: null`` removes the
    driver. A BMC password is stored encrypted and never shown again; leave it out to keep
    the stored one."""
    return await svc.power.config.put(who, name, body)


@router.post(
    "/hosts/{name}/power-on",
    name="host.power_on",
    status_code=202,
    tags=["hosts"],
    response_model=TaskInfo,
    responses={**ACCEPTED, **problem_responses(_BUSY)},
)
async def power_on_host(name: NamePath, svc: Svc, who: Admin) -> Response:
    """Switch the host on through its driver and wait until libvirt answers (a task)."""
    return accepted(await svc.power.hosts.power_on(who, name))


@router.post(
    "/hosts/{name}/power-off",
    name="host.power_off",
    status_code=202,
    tags=["hosts"],
    response_model=TaskInfo,
    responses={**ACCEPTED, **on_host(_BUSY)},
)
async def power_off_host(name: NamePath, svc: Svc, who: Admin) -> Response:
    """Put an empty host in standby through its driver (a task); refused while VMs are on it."""
    return accepted(await svc.power.hosts.power_off(who, name))
