"""One backup of one VM: libvirt writes each disk into a qcow2 file (push mode; only what
changed since the last backup's checkpoint when that checkpoint is still there), Corral reads
those files back through libvirt and stores them as chunks, then the manifest.

- Running VM: crash-consistent (the guest agent's freeze is not used yet).
- Shut-off VM: started paused (its guest never runs; as Proxmox does), backed up, destroyed.
- Incremental when the VM's previous backup in this store names a checkpoint the VM still has
  and the disks are the same; otherwise full, and the manifest says why.
- The new checkpoint is made in the same libvirt call; once the manifest is saved, older
  Corral checkpoints go (each costs a dirty bitmap every guest write updates). On failure the
  new one goes and the previous stays, so the next backup is still incremental.
- The backup files are deleted in every case.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from corral.backup.manifest import BackupKind, Consistency, DiskManifest, Manifest
from corral.backup.qcow2 import Qcow2Image
from corral.backup.store import BackupStore
from corral.errors import Conflict, CorralError
from corral.model.vm import VmState
from corral.virt import DomainRecord, LibvirtHost

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "corral-"
POLL_S = 0.5
#: (phase, fraction done, bytes read, bytes new to the store)
Progress = Callable[[str, float, int, int], Awaitable[None]]


async def _quiet(phase: str, done: float, read: int, new: int) -> None:
    return None


def new_backup_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


async def back_up(
    host: LibvirtHost,
    record: DomainRecord,
    store: BackupStore,
    *,
    full: bool = False,
    progress: Progress = _quiet,
) -> Manifest:
    started_at = time.monotonic()
    now = datetime.now(UTC)
    backup_id = new_backup_id(now)
    disks = [d for d in record.disks if d.device == "disk"]
    skip = [d.target for d in record.disks if d.device != "disk"]
    await _check_disks(host, record, [d.target for d in disks])
    previous, why_full = await _previous(host, record, store, full)
    checkpoint = f"{CHECKPOINT_PREFIX}{backup_id}"
    files = {d.target: host.backups.file_path(backup_id, d.target) for d in disks}
    paused = record.state is VmState.SHUTOFF
    if paused:
        await host.backups.start_paused(record.uuid)
    elif record.state not in (VmState.RUNNING, VmState.PAUSED, VmState.BLOCKED):
        raise Conflict(
            f"VM {record.name!r} is {record.state.value}: back it up running or shut off"
        )
    made_checkpoint = False
    try:
        await progress("the backup job", 0.0, 0, 0)
        incremental = previous.checkpoint if previous is not None else None
        await host.backups.begin(record.uuid, files, skip, incremental, checkpoint)
        made_checkpoint = True
        await _wait(host, record, progress)
        await host.backups.refresh()
        parts = await _store(host, record, store, files, previous, progress)
        manifest = Manifest(
            id=backup_id, vm=record.name, vm_uuid=record.uuid, host=host.name, created_at=now,
            kind=BackupKind.INCREMENTAL if previous else BackupKind.FULL, why_full=why_full,
            parent=previous.id if previous else None, checkpoint=checkpoint,
            consistency=Consistency.OFFLINE if paused else Consistency.CRASH, disks=parts,
            duration_s=round(time.monotonic() - started_at, 3),
            definition=record.inactive_xml or record.xml,
        )  # fmt: skip
        saved = await asyncio.to_thread(store.commit, manifest)
        await progress("saved", 1.0, saved.bytes_read, saved.bytes_new)
    except BaseException:
        if made_checkpoint:
            await _quietly(host.backups.delete_checkpoint(record.uuid, checkpoint))
        await _quietly(host.backups.abort(record.uuid))
        raise
    finally:
        for path in files.values():
            await _quietly(host.backups.delete_file(path))
        if paused:
            await _quietly(host.destroy(record.uuid))
    for name in await host.backups.checkpoints(record.uuid):
        if name.startswith(CHECKPOINT_PREFIX) and name != checkpoint:
            await _quietly(host.backups.delete_checkpoint(record.uuid, name))
    return saved


async def _quietly(call: Awaitable[None]) -> None:
    """A clean-up step: its failure is logged, and the backup's own outcome stands."""
    try:
        await call
    except CorralError as exc:
        log.warning("backup clean-up: %s", exc.message)


async def _check_disks(host: LibvirtHost, record: DomainRecord, targets: list[str]) -> None:
    if not targets:
        raise Conflict(f"VM {record.name!r} has no disk to back up")
    for target in targets:
        facts = await host.disk_moves.disk_facts(record.uuid, target)
        if facts.format != "qcow2":
            raise Conflict(
                f"VM {record.name!r}: disk {target} is {facts.format}; backups need qcow2 "
                "disks (their dirty bitmaps make incrementals possible)"
            )


async def _previous(
    host: LibvirtHost, record: DomainRecord, store: BackupStore, full: bool
) -> tuple[Manifest | None, str | None]:
    """The backup this one builds on, or why there is none."""
    listed = await asyncio.to_thread(store.manifests, record.name)
    mine = [m for m in listed if m.vm_uuid == record.uuid]
    if full:
        return None, "a full backup was asked for" if mine else None
    if not mine:
        return None, None
    last = mine[-1]
    have = set(await host.backups.checkpoints(record.uuid))
    if last.checkpoint not in have:
        return None, (f"the VM no longer has checkpoint {last.checkpoint} of backup {last.id} "
                      "(its disks were replaced or its definition recreated)")  # fmt: skip
    targets = {d.target for d in record.disks if d.device == "disk"}
    if {d.target for d in last.disks} != targets:
        return None, f"the VM's disks changed since backup {last.id}"
    return last, None


async def _wait(host: LibvirtHost, record: DomainRecord, progress: Progress) -> None:
    while True:
        job = await host.backups.job(record.uuid)
        if job.done:
            if job.failed is not None:
                raise CorralError(f"the backup job of VM {record.name!r} failed: {job.failed}")
            return
        await progress("the backup job", 0.5 * job.processed / max(job.total, 1), 0, 0)
        await asyncio.sleep(POLL_S)


async def _store(
    host: LibvirtHost,
    record: DomainRecord,
    store: BackupStore,
    files: dict[str, str],
    previous: Manifest | None,
    progress: Progress,
) -> list[DiskManifest]:
    loop = asyncio.get_running_loop()
    names = {d.target: d.name for d in record.disks}
    parts: list[DiskManifest] = []
    before = {d.target: d.chunks for d in previous.disks} if previous else {}
    with store.writing():
        for index, (target, path) in enumerate(files.items()):

            def fetch(offset: int, length: int, path: str = path) -> bytes:
                future = asyncio.run_coroutine_threadsafe(
                    host.backups.read(path, offset, length), loop
                )
                return future.result()

            def one(target: str = target) -> DiskManifest:
                image = Qcow2Image(fetch)
                extents = image.extents()
                ranges = [(e.offset, e.length) for e in extents]
                part = store.write_disk(
                    target,
                    names.get(target, target),
                    image.size,
                    ranges,
                    lambda offset, length: image.read(extents, offset, length),
                    before.get(target),
                )
                # What was read of the VM: the job's data, not the zeros its tables state.
                fetched = sum(e.length for e in extents if e.file_offset is not None)
                return part.model_copy(update={"bytes_read": fetched})

            await progress(f"storing disk {target}", 0.5 + 0.5 * index / len(files), 0, 0)
            parts.append(await asyncio.to_thread(one))
    return parts
