"""What a disk move a crashed manager left behind becomes (recovery at start-up).

A running move records where it stands in its task's result (``move``: host, VM UUID, disk
target, target domain, new volume and its path, old path) once the new volume exists. After a
crash the copy job may still run in QEMU and the new volume is there. Resolved on the host:

- the guest already runs on the new volume (the pivot happened): its definition is pointed at
  it as well; the move succeeded, the old volume is kept;
- otherwise the copy is stopped and the new volume deleted: the VM stays on its old disk, and
  the task fails saying so.
"""

from __future__ import annotations

import contextlib
from typing import Any

from corral.errors import CorralError
from corral.services.storage import StorageDomains
from corral.virt import LibvirtHost

#: The key of a running move's record in its task's result.
RECORD_KEY = "move"


def move_record(
    host: str, uuid: str, vm: str, disk: str, to: str, volume: str, path: str, old: str
) -> dict[str, Any]:
    return {RECORD_KEY: {"host": host, "uuid": uuid, "vm": vm, "disk": disk, "to": to,
                         "volume": volume, "path": path, "old": old}}  # fmt: skip


async def settle(
    record: dict[str, Any] | None, host: LibvirtHost | None, domains: StorageDomains
) -> dict[str, Any]:
    """Resolve one interrupted move (see the module); its result, or a CorralError saying
    what happened to the VM and the volumes."""
    if not record:
        raise CorralError(
            "Corral restarted before the move made its new volume: nothing was changed; run "
            "the move again"
        )
    vm, disk, volume = record["vm"], record["disk"], record["volume"]
    where = f"disk {disk} of VM {vm!r}, new volume {volume} of storage domain {record['to']}"
    if host is None or not host.connected:
        raise CorralError(
            f"Corral restarted during the move of {where}, and host {record['host']} is not "
            "connected: check on the host which volume the VM uses, and delete the other"
        )
    driver = domains.driver(await domains.config(record["to"]))
    domain = await host.get_domain(record["uuid"])
    now = next((d.path for d in domain.disks if d.target == disk), None)
    if now == record["path"]:
        new = next(v for v in await driver.list_volumes(host) if v.name == volume)
        if domain.inactive_xml:
            await host.disk_moves.set_disk_source(domain.uuid, disk, driver.disk_source(host, new))
        return {"vm": vm, "disk": disk, "to": record["to"], "volume": volume,
                "path": record["path"], "live": True,
                "source": f"kept: {record['old']} (Corral restarted during the move)"}  # fmt: skip
    with contextlib.suppress(CorralError):
        await host.disk_moves.abort_copy(domain.uuid, disk)
    await driver.delete_volume(host, volume)
    raise CorralError(
        f"Corral restarted during the move of {where}: the copy was stopped and the new volume "
        "deleted; the VM stays on its old disk. Run the move again"
    )
