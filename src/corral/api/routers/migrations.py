"""Live migration, evacuation, the transports available and the cluster's settings."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from corral.api.deps import Admin, Operator, Svc, Viewer
from corral.api.routers.vms import accepted
from corral.model.cluster import ClusterSettings, ClusterSettingsUpdate
from corral.model.migration import MigrationRequest
from corral.model.task import TaskInfo

router = APIRouter()


class TransportInfo(BaseModel):
    name: str
    description: str
    encrypted: bool
    allowed: bool = Field(description="whether a migration may ask for it now")


class EvacuateRequest(BaseModel):
    """How every VM moves (a migration request without ``to``: each VM goes to the connected
    host with the most free memory)."""

    transport: str | None = None
    max_downtime_ms: int | None = Field(default=None, ge=1, le=60_000)
    bandwidth_mib_s: int | None = Field(default=None, ge=1, le=1_000_000)
    parallel_connections: int | None = Field(default=None, ge=2, le=32)


@router.post("/vms/{name}/migrate", name="vm.migrate", status_code=202, tags=["vms"])
async def migrate_vm(
    name: str, body: MigrationRequest, request: Request, response: Response, svc: Svc, who: Operator
) -> TaskInfo:
    """Live-migrate a running VM to another host: a task (``result.migration`` has its steps
    and the latest job statistics). Checked first: a request that cannot work is a 4xx."""
    request.state.audit_target = f"{name}->{body.to}"
    return accepted(response, await svc.migrations.migrate.start(who, name, body))


@router.post("/hosts/{name}/evacuate", name="host.evacuate", status_code=202, tags=["hosts"])
async def evacuate_host(
    name: str,
    response: Response,
    svc: Svc,
    who: Admin,
    body: EvacuateRequest | None = None,
) -> TaskInfo:
    """Put the host in maintenance and migrate every VM off it, each to the connected host
    with the most free memory."""
    fields = (body or EvacuateRequest()).model_dump(exclude_none=True)
    template = MigrationRequest.model_validate({"to": name, **fields})
    return accepted(response, await svc.migrations.evacuate.evacuate(who, name, template))


@router.get("/migration/transports", name="migration.transports", tags=["vms"])
async def list_transports(svc: Svc, _: Viewer) -> list[TransportInfo]:
    insecure_ok = (await svc.cluster.get()).allow_insecure_migration
    return [
        TransportInfo(
            name=t.name,
            description=t.description,
            encrypted=t.encrypted,
            allowed=t.encrypted or insecure_ok,
        )
        for t in sorted(svc.migrations.migrate.transports.values(), key=lambda t: t.name)
    ]


@router.get("/cluster/settings", name="cluster.settings", tags=["cluster"])
async def show_settings(svc: Svc, _: Viewer) -> ClusterSettings:
    return await svc.cluster.get()


@router.patch("/cluster/settings", name="cluster.settings.update", tags=["cluster"])
async def update_settings(body: ClusterSettingsUpdate, svc: Svc, who: Admin) -> ClusterSettings:
    """Change cluster settings (admin; each change is audited with its old and new value)."""
    return await svc.cluster.update(who, body)
