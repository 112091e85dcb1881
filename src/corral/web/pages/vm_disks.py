"""A VM page's storage: which storage domain holds each disk, and where the Move action may
take one (the domains its host reaches)."""

from __future__ import annotations

from typing import Any

from corral.errors import CorralError
from corral.model.storage_domain import LOCAL_DOMAIN, ReachState
from corral.model.vm import VmInfo
from corral.services.runtime import Services


async def _local_paths(svc: Services, host: str) -> set[str]:
    """The volumes of ``host``'s own pool (the local domain), or none if it cannot be read."""
    try:
        return {v.path for v in await svc.storage_volumes.list_volumes(LOCAL_DOMAIN, host)}
    except CorralError:
        return set()


async def disk_storage(svc: Services, vm: VmInfo) -> dict[str, Any]:
    """``disk_domains`` (disk target -> the domain holding its volume; absent: a file outside
    every domain) and ``move_targets`` (the domains the VM's host reaches)."""
    disks = [d for d in vm.disks if d.device == "disk" and d.path]
    held = await svc.storage.holders([d.path for d in disks])
    found = {d.target: held[d.path] for d in disks if d.path in held}
    if any(d.target not in found for d in disks):
        local = await _local_paths(svc, vm.host)
        found.update({d.target: LOCAL_DOMAIN for d in disks if d.path in local})
    domains = await svc.storage.list_domains()
    targets = [
        d.name
        for d in domains
        if any(h.host == vm.host and h.state is ReachState.REACHABLE for h in d.hosts)
    ]
    return {"disk_domains": found, "move_targets": targets}
