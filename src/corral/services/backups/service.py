"""Backup stores (added, listed, removed), VM backups as tasks, backups listed, stores
verified, and backups restored to new VMs."""

from __future__ import annotations

import asyncio
import secrets
from functools import partial
from pathlib import Path
from typing import Any

from corral import store
from corral.backup.chunks import CorruptChunk
from corral.backup.keys import StoreKey, parse_key
from corral.backup.manifest import DiskManifest, Manifest
from corral.backup.retention import Retention, to_remove
from corral.backup.store import BackupStore
from corral.errors import Conflict, CorralError
from corral.model.backup import (
    BackupInfo,
    BackupRestoreRequest,
    BackupStoreCreate,
    BackupStoreInfo,
    PruneRequest,
    PruneResult,
    VerifyProblem,
    VerifyResult,
    VmBackupRequest,
)
from corral.model.task import TaskInfo
from corral.services.backups.runner import back_up
from corral.services.power.secrets import SecretBox
from corral.services.principal import Principal
from corral.services.tasks import TaskContext
from corral.services.vms._use_case import TaskUseCase
from corral.services.vms._volumes import volume_name
from corral.services.vms.clone import undo_made
from corral.store import backup_stores as rows
from corral.store.tables import BackupStoreRow
from corral.virt import LibvirtHost, VolumeRef


def backup_info(store_name: str, m: Manifest) -> BackupInfo:
    return BackupInfo(
        id=m.id, store=store_name, vm=m.vm, host=m.host, created_at=m.created_at, kind=m.kind,
        why_full=m.why_full, parent=m.parent, consistency=m.consistency,
        size_bytes=m.size_bytes, bytes_read=m.bytes_read, bytes_new=m.bytes_new,
        duration_s=m.duration_s, disks=[d.target for d in m.disks],
    )  # fmt: skip


class BackupService(TaskUseCase):
    secrets: SecretBox | None = None

    # -- stores -----------------------------------------------------------------------------
    async def add_store(self, principal: Principal, req: BackupStoreCreate) -> BackupStoreInfo:
        db = self._inventory.db
        if await db.read(lambda s: rows.find_backup_store(s, req.name)) is not None:
            raise Conflict(f"a backup store named {req.name!r} already exists; choose another")
        key = parse_key(req.key) if req.key is not None else None
        sealed = self._box().seal({"key": req.key.strip()}) if req.key is not None else None
        path = Path(req.path)
        await asyncio.to_thread(BackupStore.create, path, key)
        await db(
            lambda s: rows.add_backup_store(
                s, name=req.name, path=str(path), key_sealed=sealed, created_by=principal.user
            )
        )
        return await self.show_store(req.name)

    def _box(self) -> SecretBox:
        if self.secrets is None:
            raise Conflict("this Corral has no secrets key for encrypted backup stores")
        return self.secrets

    def _key(self, row: BackupStoreRow) -> StoreKey | None:
        if row.key_sealed is None:
            return None
        return parse_key(self._box().open(row.key_sealed)["key"])

    async def _open(self, name: str) -> tuple[BackupStoreRow, BackupStore]:
        row = await self._inventory.db.read(lambda s: rows.get_backup_store(s, name))
        opened = await asyncio.to_thread(BackupStore.open, Path(row.path), self._key(row))
        return row, opened

    async def stores(self) -> list[BackupStoreInfo]:
        found = await self._inventory.db.read(rows.list_backup_stores)
        return [await self.show_store(r.name) for r in found]

    async def show_store(self, name: str) -> BackupStoreInfo:
        row = await self._inventory.db.read(lambda s: rows.get_backup_store(s, name))
        info = BackupStoreInfo(name=row.name, path=row.path, encrypted=row.key_sealed is not None,
                               created_by=row.created_by, created_at=row.created_at)  # fmt: skip
        try:
            _, opened = await self._open(name)

            def usage() -> tuple[int, dict[str, int]]:
                return len(opened.manifests()), opened.usage()

            count, used = await asyncio.to_thread(usage)
        except CorralError as exc:
            return info.model_copy(update={"problem": exc.message})
        return info.model_copy(
            update={"backups": count, "key_fingerprint": opened.config.key_fingerprint, **used}
        )

    async def remove_store(self, name: str) -> None:
        """Corral forgets the store; its directory and backups stay where they are."""
        await self._inventory.db(lambda s: rows.delete_backup_store(s, name))

    # -- backups ----------------------------------------------------------------------------
    async def back_up(self, principal: Principal, vm: str, req: VmBackupRequest) -> TaskInfo:
        _row, _store = await self._open(req.store)
        row, host, _record = await self._inventory.record(vm)

        async def body(ctx: TaskContext) -> dict[str, Any]:
            async with self._locks.hold(vm, "backup"):
                _, record = (await self._inventory.record(vm))[1:]

                async def progress(phase: str, done: float, read: int, new: int) -> None:
                    await ctx.progress(done, phase=phase, bytes_done=read or None)

                async def run() -> Manifest:
                    return await back_up(host, record, _store, full=req.full, progress=progress)

                made = await self._audit.outcome(principal.user, "vm.backup", vm, run)
            info = backup_info(req.store, made)
            return info.model_dump(mode="json")

        params = {"store": req.store, "host": host.name}
        return await self._tasks.start("vm.backup", row.name, principal, body, "queued", params)

    async def backups(self, store_name: str, vm: str | None = None) -> list[BackupInfo]:
        _, opened = await self._open(store_name)
        found = await asyncio.to_thread(opened.manifests, vm)
        return [backup_info(store_name, m) for m in found]

    async def vm_backups(self, vm: str) -> list[BackupInfo]:
        found: list[BackupInfo] = []
        for row in await self._inventory.db.read(rows.list_backup_stores):
            try:
                found += await self.backups(row.name, vm)
            except CorralError:
                continue  # an unreachable store: `backup store show` says why
        return sorted(found, key=lambda b: (b.created_at, b.id))

    async def verify(self, principal: Principal, store_name: str) -> TaskInfo:
        _, opened = await self._open(store_name)

        async def body(ctx: TaskContext) -> dict[str, Any]:
            await ctx.progress(0.0, phase="re-reading every chunk", force=True)
            report = await asyncio.to_thread(opened.verify)
            result = VerifyResult(
                store=store_name, backups=report.backups, chunks=report.chunks,
                bytes=report.bytes, ok=report.ok,
                problems=[VerifyProblem(**p.__dict__) for p in report.problems],
            )  # fmt: skip
            if not report.ok:
                first = report.problems[0]
                raise CorralError(
                    f"backup store {store_name}: {len(report.problems)} damaged chunk(s), e.g. "
                    f"backup {first.backup} of VM {first.vm}, disk {first.disk}: {first.why}"
                )
            return result.model_dump(mode="json")

        return await self._tasks.start("backup.verify", store_name, principal, body, "queued")

    async def prune(self, store_name: str, req: PruneRequest) -> PruneResult:
        """Delete the backups ``req`` does not keep, per VM, then the unused chunks."""
        _, opened = await self._open(store_name)
        policy = Retention(
            keep_last=req.keep_last, keep_daily=req.keep_daily, keep_weekly=req.keep_weekly
        )

        def run() -> PruneResult:
            manifests = opened.manifests(req.vm)
            by_vm: dict[str, list[Manifest]] = {}
            for m in manifests:
                by_vm.setdefault(m.vm, []).append(m)
            going = [m for group in by_vm.values() for m in to_remove(group, policy)]
            if req.dry_run:
                return PruneResult(store=store_name, removed=[f"{m.vm}/{m.id}" for m in going],
                                   kept=len(manifests) - len(going), chunks_removed=0,
                                   bytes_freed=0, dry_run=True)  # fmt: skip
            for m in going:
                opened.delete_backup(m.vm, m.id)
            gc = opened.gc()
            return PruneResult(store=store_name, removed=[f"{m.vm}/{m.id}" for m in going],
                               kept=len(manifests) - len(going), chunks_removed=gc.chunks_removed,
                               bytes_freed=gc.bytes_freed, dry_run=False)  # fmt: skip

        return await asyncio.to_thread(run)

    # -- restore ----------------------------------------------------------------------------
    async def restore(
        self, principal: Principal, store_name: str, vm: str, backup: str,
        req: BackupRestoreRequest,
    ) -> TaskInfo:  # fmt: skip
        _, opened = await self._open(store_name)
        manifest = await asyncio.to_thread(opened.manifest, vm, backup)
        if manifest.definition is None:
            raise Conflict(f"backup {backup} holds no VM definition: it cannot make a new VM")
        if await self._inventory.db.read(lambda s: store.find_vm(s, req.name)) is not None:
            raise Conflict(f"a VM named {req.name!r} already exists; choose another name")
        host = self._inventory.hosts.for_new_vm(req.host)

        async def body(ctx: TaskContext) -> dict[str, Any]:
            async with self._locks.hold(req.name, "create"):
                await self._audit.outcome(
                    principal.user,
                    "vm.restore",
                    req.name,
                    lambda: self._restore(ctx, principal, host, opened, manifest, req),
                )
            return {"vm": req.name, "backup": backup, "store": store_name}

        params = {"host": host.name, "store": store_name}
        return await self._tasks.start("vm.restore", req.name, principal, body, "queued", params)

    async def _restore(
        self, ctx: TaskContext, principal: Principal, host: LibvirtHost, opened: BackupStore,
        manifest: Manifest, req: BackupRestoreRequest,
    ) -> None:  # fmt: skip
        made: list[VolumeRef] = []
        record = None
        try:
            # Every chunk read and checked before a byte is written: never wrong data.
            await ctx.progress(0.0, phase="checking the backup's chunks", force=True)
            for disk in manifest.disks:
                try:
                    await asyncio.to_thread(opened.check_disk, disk)
                except CorruptChunk as exc:
                    raise Conflict(
                        f"backup {manifest.id} of VM {manifest.vm} cannot be restored: "
                        f"{exc.message}; nothing was written"
                    ) from None
            paths: dict[str, str] = {}
            for index, disk in enumerate(manifest.disks):
                await ctx.progress(index / len(manifest.disks), phase=f"disk {disk.target}")
                volume = await _write_disk(host, opened, disk, req.name, made)
                paths[disk.target] = volume.path
            await ctx.progress(phase="defining the VM", force=True)
            assert manifest.definition is not None
            record = await host.define_copy(manifest.definition, req.name, paths,
                                            f"restored from backup {manifest.id}")  # fmt: skip
            uuid, accelerator = record.uuid, record.accelerator
            await self._inventory.db(
                partial(
                    store.add_vm,
                    uuid=uuid,
                    name=req.name,
                    host=host.name,
                    created_by=principal.user,
                    description="",
                    accelerator=accelerator,
                )
            )
        except BaseException:
            await undo_made(host, "restore", made, defined=record)
            raise
        if req.start:
            await ctx.progress(phase="starting the VM", force=True)
            await host.start(uuid)


async def _write_disk(
    host: LibvirtHost, opened: BackupStore, disk: DiskManifest, vm: str, made: list[VolumeRef]
) -> VolumeRef:
    """The disk's volume for VM ``vm``: its chunks written into a raw volume (zeros skipped),
    converted into the qcow2 the VM gets. What is made is added to ``made``."""
    raw = await host.storage.create_blank_volume(
        f".restore-{secrets.token_hex(4)}-{disk.target}.raw", disk.size_bytes, "raw"
    )
    made.append(raw)
    for number, name in enumerate(disk.chunks):
        if name is not None:
            data = await asyncio.to_thread(opened.chunks.get, name)
            await host.backups.write(raw.path, number * disk.chunk_size, data)
    volume = await host.storage.create_blank_volume(volume_name(vm, disk.target), disk.size_bytes)
    made.append(volume)
    await host.disk_moves.clone_volume(raw.path, volume.path)
    await host.storage.delete_volume(raw.name)
    made.remove(raw)
    return volume
