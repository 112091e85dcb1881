"""Live migration, evacuation, the transports available and the cluster's settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from corral.api.deps import Admin, Operator, Svc, Viewer
from corral.api.openapi import on_host, problem_responses
from corral.api.params import NamePath
from corral.api.routers.vms import ACCEPTED, accepted
from corral.model.cluster import ClusterSettings, ClusterSettingsUpdate
from corral.model.common import Name
from corral.model.migration import MigrationRequest, TransportInfo, TransportName
from corral.model.task import TaskInfo

router = APIRouter()


class EvacuateRequest(BaseModel):
    """How every VM moves (a migration request without ``to``: each VM goes to the connected
    host with the most free memory). The same limits as ``MigrationRequest``."""

    model_config = ConfigDict(extra="forbid")

    transport: TransportName | None = None
    max_downtime_ms: int | None = Field(default=None, ge=1, le=60_000)
    bandwidth_mib_s: int | None = Field(default=None, ge=1, le=1_000_000)
    parallel_connections: int | None = Field(default=None, ge=1, le=32)


@router.post(
    "/vms/{name}/migrate",
    name="vm.migrate",
    status_code=202,
    tags=["vms"],
    response_model=TaskInfo,
    responses={
        **ACCEPTED,
        **on_host(
            (403, "the insecure transport without the cluster's switch"),
            (404, "no such VM or destination host"),
            (
                409,
                "the VM or destination is in no state for it (shut off, busy, maintenance, "
                "same host, not enough memory, incompatible CPU…)",
            ),
        ),
    },
)
async def migrate_vm(
    name: NamePath, body: MigrationRequest, request: Request, svc: Svc, who: Operator
) -> Response:
    """Live-migrate a running VM to another host: a task (``result.migration`` has its steps
    and the latest job statistics). Checked first: a request that cannot work is a 4xx."""
    request.state.audit_target = f"{name}->{body.to}"
    return accepted(await svc.migrations.migrate.start(who, name, body))


@router.post(
    "/hosts/{name}/evacuate",
    name="host.evacuate",
    status_code=202,
    tags=["hosts"],
    response_model=TaskInfo,
    responses={
        **ACCEPTED,
        **on_host(
            (403, "the insecure transport without the cluster's switch"),
            (404, "no such host"),
            (409, "no other host can take the VMs, or the host is busy"),
        ),
    },
)
async def evacuate_host(
    name: NamePath, svc: Svc, who: Admin, body: EvacuateRequest | None = None
) -> Response:
    """Put the host in maintenance and migrate every VM off it, each to the connected host
    with the most free memory."""
    fields = (body or EvacuateRequest()).model_dump(exclude_none=True)
    template = MigrationRequest.model_validate({"to": name, **fields})
    return accepted(await svc.migrations.evacuate.evacuate(who, name, template))


@router.get(
    "/migration/transports",
    name="migration.transports",
    tags=["vms"],
    responses=problem_responses(
        (404, "no such host"), (422, "only one of source and destination, or the same host")
    ),
)
async def list_transports(
    svc: Svc,
    _: Viewer,
    source: Annotated[Name | None, Query(description="check this pair only: from")] = None,
    destination: Annotated[Name | None, Query(description="check this pair only: to")] = None,
) -> list[TransportInfo]:
    """Every transport: whether a migration may ask for it now (``allowed``) and whether it
    works between the hosts (``usable``, with the ``reason``): checked on the hosts, for the
    pair given or every pair of connected enrolled hosts (an ssh probe per pair, so this can
    take a few seconds)."""
    return await svc.migrations.transports.survey(source, destination)


@router.get("/cluster/settings", name="cluster.settings", tags=["cluster"])
async def show_settings(svc: Svc, _: Viewer) -> ClusterSettings:
    return await svc.cluster.get()


@router.patch(
    "/cluster/settings",
    name="cluster.settings.update",
    tags=["cluster"],
    responses=problem_responses(
        (
            409,
            "the settings would not fit together (low_utilisation below high_utilisation, "
            "power_standby_w ≤ power_idle_w ≤ power_max_w)",
        )
    ),
)
async def update_settings(body: ClusterSettingsUpdate, svc: Svc, who: Admin) -> ClusterSettings:
    """Change cluster settings (admin; each change is audited with its old and new value)."""
    return await svc.cluster.update(who, body)
