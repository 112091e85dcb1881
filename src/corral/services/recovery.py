"""Taking over what an instance left half-done: resumers for the task kinds that make things
on hosts without a recovery of their own (a VM's creation, an image upload).

Migrations and disk moves resume through their own code (``MigrationServices.resume``,
``VmDiskMove.resume``); every kind without a resumer fails with
:data:`~corral.services.tasks.INTERRUPTED`.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from corral import store
from corral.errors import CorralError, NotFound
from corral.model.image import ImageKind
from corral.model.task import TaskInfo
from corral.model.vm import VmState
from corral.services._db import Db
from corral.services.hosts import HostService
from corral.services.images import image_volume
from corral.services.tasks import INTERRUPTED, TaskContext, TaskService
from corral.services.vms._volumes import backs_another
from corral.virt import LibvirtHost

log = logging.getLogger(__name__)


class CreateRecovery:
    """An interrupted ``vm.create`` (with an import) or ``vm.clone``: finished if its VM was
    made (started as asked), else the volumes it had made are deleted and it fails."""

    def __init__(self, db: Db, tasks: TaskService, hosts: HostService) -> None:
        self._db = db
        self._tasks = tasks
        self._hosts = hosts

    async def resume(self, task: TaskInfo) -> None:
        row = await self._db(partial(store.find_vm, name=task.target))
        params = await self._tasks.params(task.id)
        if row is None:
            for host in self._hosts.all():
                if host.connected:
                    if host.name == params.get("host"):
                        await self._remove_unrecorded_domain(host, task.target)
                    await _remove_orphans(host, task.target)
            await self._tasks.fail(task, INTERRUPTED)
            return
        host = self._hosts.get(row.host.name)

        async def body(ctx: TaskContext) -> dict[str, Any]:
            domain = await host.get_domain(row.uuid)
            started = domain.state in (VmState.RUNNING, VmState.PAUSED)
            if params.get("start") and not started:
                await ctx.progress(phase="starting the VM", force=True)
                await host.start(row.uuid)
                started = True
            made = {"vm": task.target, "uuid": row.uuid, "started": started, "resumed": True}
            return made | ({"source": params["source"]} if "source" in params else {})

        await self._tasks.resume(task, body)

    async def _remove_unrecorded_domain(self, host: LibvirtHost, vm: str) -> None:
        """The creator was lost between defining the VM's domain and recording the VM: the
        domain is this creation's (its name was free on this host and locked by the creator)
        and goes, its volumes then with the orphans. Left, the task failed beside a domain
        that the reconciler later adopted (bench/failover.py). A running domain, or one
        recorded meanwhile, is left alone."""
        try:
            record = await host.get_domain(vm)
            if record.state in (VmState.RUNNING, VmState.PAUSED):
                return
            if await self._db(partial(store.find_vm_by_uuid, uuid=record.uuid)) is not None:
                return
            log.warning("undefining domain %s left by an interrupted creation", vm)
            await host.undefine_domain(record.uuid)
        except NotFound:
            return
        except CorralError as exc:
            log.error("could not undefine the domain of the interrupted creation of %s: %s",
                      vm, exc.message)  # fmt: skip


class UploadRecovery:
    """An interrupted ``image.upload`` (target ``HOST/NAME``): the partial image goes."""

    def __init__(self, tasks: TaskService, hosts: HostService) -> None:
        self._tasks = tasks
        self._hosts = hosts

    async def resume(self, task: TaskInfo) -> None:
        await _remove_partial_image(self._hosts, task.target)
        await self._tasks.fail(task, INTERRUPTED)


async def _remove_orphans(host: LibvirtHost, vm: str) -> None:
    try:
        used = {d.path for r in await host.list_domains() for d in r.disks}
        volumes = await host.storage.list_volumes()
        for vol in volumes:
            # Never a volume a domain uses, nor a base that linked clones stand on.
            if (
                vol.name.startswith(f"{vm}-")
                and vol.path not in used
                and not backs_another(vol, volumes)
            ):
                log.warning("deleting volume %s left by an interrupted creation", vol.name)
                await host.storage.delete_volume(vol.name)
    except CorralError as exc:
        log.error("could not clean up after the interrupted creation of %s: %s", vm, exc.message)


async def _remove_partial_image(hosts: HostService, target: str) -> None:
    host_name, _, name = target.partition("/")
    host = next((h for h in hosts.all() if h.name == host_name and h.connected), None)
    if host is None or not name:
        return
    try:
        used = await host.disk_users()
        for kind in ImageKind:
            volume = await host.storage.find_volume(image_volume(kind, name))
            if volume is not None and volume.path not in used:
                log.warning("deleting image %s left by an interrupted upload", volume.name)
                await host.storage.delete_volume(volume.name)
    except CorralError as exc:
        log.error("could not clean up after the interrupted upload of %s: %s", target, exc.message)
