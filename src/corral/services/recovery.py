"""Resolve what a crashed manager left half-done: interrupted tasks and their partial volumes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial

from corral import store
from corral.errors import CorralError
from corral.model.image import ImageKind
from corral.model.task import TaskInfo, TaskState
from corral.services._db import Db
from corral.services.hosts import HostService
from corral.services.images import image_volume
from corral.services.tasks import TaskService
from corral.services.vms._volumes import backs_another
from corral.virt import LibvirtHost

log = logging.getLogger(__name__)


Resume = Callable[[TaskInfo], Awaitable[None]]


async def recover(
    db: Db,
    tasks: TaskService,
    hosts: HostService,
    resumers: dict[str, Resume] | None = None,
) -> None:
    """Fail interrupted tasks, except running ones whose kind has a resumer (a migration the
    source host went on with): those are handed to it. For an interrupted ``vm.create`` whose
    VM never got its row, delete the volumes it had made (named ``VM-DISK.qcow2``) that no
    domain uses; for an interrupted ``image.upload`` (target ``HOST/NAME``), the partial
    image."""
    resumers = resumers or {}
    interrupted = await tasks.recover_interrupted(frozenset(resumers))
    if interrupted:
        log.warning("%d task(s) were interrupted by the last shutdown", len(interrupted))
    for task in interrupted:
        if task.kind in resumers and task.state is TaskState.RUNNING:
            log.warning("resuming task %s (%s %s)", task.id, task.kind, task.target)
            try:
                await resumers[task.kind](task)
            except CorralError as exc:
                log.error("could not resume task %s: %s", task.id, exc.message)
                await tasks.update(task.id, state=TaskState.FAILED, error=exc.message)
            continue
        if task.kind == "image.upload":
            await _remove_partial_image(hosts, task.target)
            continue
        if task.kind != "vm.create":
            continue
        if await db(partial(store.find_vm, name=task.target)) is not None:
            continue
        for host in hosts.all():
            if host.connected:
                await _remove_orphans(host, task.target)


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
