"""High availability: a VM's HA setting, the cluster's HA state, an administrator's word
that a silent host is off."""

from __future__ import annotations

from fastapi import APIRouter, Request

from corral.api.deps import Admin, Operator, Svc, Viewer
from corral.api.openapi import on_host, problem_responses
from corral.api.params import NamePath
from corral.model.ha import HaStatus, HostHa, VmHaInfo, VmHaRequest

router = APIRouter(tags=["ha"])


@router.get("/ha", name="ha.status")
async def ha_status(svc: Svc, _: Viewer) -> HaStatus:
    """Each host's HA state and the HA VMs waiting for a host that can take them."""
    return await svc.ha.monitor.status()


@router.get("/vms/{name}/ha", name="vm.ha.show")
async def show_vm_ha(name: NamePath, svc: Svc, _: Viewer) -> VmHaInfo:
    return await svc.ha.definitions.show(name)


@router.put(
    "/vms/{name}/ha",
    name="vm.ha",
    responses=on_host((409, "a disk is on local storage: nothing could restart it elsewhere")),
)
async def set_vm_ha(
    name: NamePath, body: VmHaRequest, request: Request, svc: Svc, who: Operator
) -> VmHaInfo:
    """Switch HA on (with a restart priority, higher first) or off. On: every disk must be on
    a shared storage domain; the VM's definition is saved to restart it from elsewhere."""
    request.state.audit_detail = f"on, priority {body.priority}" if body.enabled else "off"
    return await svc.ha.definitions.configure(who, name, body)


@router.post(
    "/hosts/{name}/confirm-down",
    name="host.confirm_down",
    responses=problem_responses((409, "the host answers libvirt: it is not down")),
)
async def confirm_down(name: NamePath, svc: Svc, who: Admin) -> HostHa:
    """The last resort when fencing cannot prove a host off (no BMC, or a dead one): your word
    that it is off. Its HA VMs then restart elsewhere. Refused while the host answers."""
    return await svc.ha.monitor.confirm_down(who, name)
