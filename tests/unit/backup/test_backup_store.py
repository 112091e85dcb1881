"""The backup store on its own: chunks stored once, incrementals that read only what
changed, restores equal to the source, a flipped byte found by verify and refused by restore,
a wrong key refused, interrupted backups leaving no manifest, retention and GC."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from corral.backup.chunks import CHUNK_SIZE, CorruptChunk
from corral.backup.keys import StoreKey, new_key_text, parse_key, write_key_file
from corral.backup.manifest import BackupKind, Consistency, DiskManifest, Manifest
from corral.backup.retention import Retention, kept
from corral.backup.store import BackupStore
from corral.errors import Conflict, InvalidRequest, NotFound

MIB = 1024 * 1024


class Disk:
    """A disk image in memory that counts what is read of it."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)
        self.read_bytes = 0

    def read(self, offset: int, length: int) -> bytes:
        self.read_bytes += length
        return bytes(self.data[offset : offset + length])

    def write(self, offset: int, data: bytes) -> tuple[int, int]:
        self.data[offset : offset + len(data)] = data
        return offset, len(data)


def _backup(
    store: BackupStore,
    disk: Disk,
    ranges: list[tuple[int, int]],
    previous: Manifest | None = None,
    when: datetime | None = None,
    vm: str = "web1",
) -> Manifest:
    part = store.write_disk("vda", "root", len(disk.data), ranges, disk.read,
                            previous.disks[0].chunks if previous else None)  # fmt: skip
    created = when or datetime.now(UTC)
    manifest = Manifest(
        id=f"{created:%Y%m%dT%H%M%S%f}", vm=vm, vm_uuid="u", host="local", created_at=created,
        kind=BackupKind.INCREMENTAL if previous else BackupKind.FULL,
        parent=previous.id if previous else None, consistency=Consistency.CRASH, disks=[part],
    )  # fmt: skip
    return store.commit(manifest)


def _restored(store: BackupStore, manifest: Manifest) -> bytes:
    out = io.BytesIO()
    store.check_disk(manifest.disks[0])
    store.restore_disk(manifest.disks[0], out)
    return out.getvalue()


@pytest.fixture(params=["plain", "encrypted"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BackupStore:
    key = parse_key(new_key_text()) if request.param == "encrypted" else None
    return BackupStore.create(tmp_path / "store", key)


def test_full_then_incremental_reads_and_stores_only_what_changed(store: BackupStore) -> None:
    disk = Disk(64 * MIB)
    disk.write(0, os.urandom(10 * MIB))
    full = _backup(store, disk, [(0, len(disk.data))])
    assert full.disks[0].chunks[3:] == [None] * 13  # zeros are not stored
    assert _restored(store, full) == disk.data
    at_full = bytes(disk.data)

    disk.read_bytes = 0
    changed = [disk.write(40 * MIB, os.urandom(8 * MIB)), disk.write(5 * MIB + 123, b"x" * 1000)]
    incremental = _backup(store, disk, changed, previous=full)
    assert disk.read_bytes == 8 * MIB + 1000  # only the changed bytes
    assert incremental.bytes_new <= 1.2 * (8 * MIB + CHUNK_SIZE)
    assert _restored(store, incremental) == disk.data
    # The earlier backup still restores as it was, and stands alone once the other goes.
    store.delete_backup("web1", incremental.id)
    assert store.gc().chunks_removed >= 2
    assert _restored(store, full) == at_full


def test_the_same_data_in_two_disks_is_stored_once(store: BackupStore) -> None:
    shared = os.urandom(12 * MIB)
    first, second = Disk(16 * MIB), Disk(16 * MIB)
    first.write(0, shared)
    second.write(0, shared)
    one = _backup(store, first, [(0, 16 * MIB)], vm="clone1")
    two = _backup(store, second, [(0, 16 * MIB)], vm="clone2")
    assert one.bytes_new > 12 * MIB * 0.9
    assert two.bytes_new == 0


def test_a_flipped_byte_is_found_by_verify_and_refused_by_restore(store: BackupStore) -> None:
    disk = Disk(8 * MIB)
    disk.write(0, os.urandom(8 * MIB))
    backup = _backup(store, disk, [(0, 8 * MIB)])
    assert store.verify().ok
    victim = backup.disks[0].chunks[1]
    assert victim is not None
    path = store.chunks.path(victim)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    report = store.verify()
    assert [(p.backup, p.chunk) for p in report.problems] == [(backup.id, victim)]
    with pytest.raises(CorruptChunk) as refused:
        store.check_disk(backup.disks[0])
    assert refused.value.chunk == victim


def test_a_missing_chunk_is_reported(store: BackupStore) -> None:
    disk = Disk(4 * MIB)
    disk.write(0, b"a" * 100)
    backup = _backup(store, disk, [(0, 4 * MIB)])
    name = backup.disks[0].chunks[0]
    assert name is not None
    store.chunks.path(name).unlink()
    assert "missing" in store.verify().problems[0].why


def test_an_interrupted_backup_leaves_no_manifest_and_gc_cleans_up(store: BackupStore) -> None:
    disk = Disk(16 * MIB)
    disk.write(0, os.urandom(16 * MIB))
    calls = 0

    def cancelled() -> bool:
        nonlocal calls
        calls += 1
        return calls > 2

    with store.writing(), pytest.raises(Conflict):
        store.write_disk("vda", "root", 16 * MIB, [(0, 16 * MIB)], disk.read, None, cancelled)
    assert store.manifests() == []
    assert len(list(store.chunks.names())) == 2
    assert store.gc().chunks_removed == 2
    assert list(store.chunks.names()) == []


def test_gc_waits_for_a_running_backup(store: BackupStore) -> None:
    with store.writing(), pytest.raises(Conflict) as busy:
        store.gc()
    assert "a backup runs" in busy.value.message


def test_keys_are_checked_when_a_store_is_opened(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    write_key_file(key_file)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(FileExistsError):
        write_key_file(key_file)  # never overwrite a key
    key = parse_key(key_file.read_text())
    BackupStore.create(tmp_path / "s", key)
    with pytest.raises(InvalidRequest, match="is encrypted"):
        BackupStore.open(tmp_path / "s")
    with pytest.raises(InvalidRequest, match="not the key"):
        BackupStore.open(tmp_path / "s", parse_key(new_key_text()))
    assert BackupStore.open(tmp_path / "s", key).config.encrypted
    with pytest.raises(InvalidRequest, match="not a Corral backup key"):
        parse_key("hello")
    with pytest.raises(NotFound, match="not a backup store"):
        BackupStore.open(tmp_path / "nowhere")
    with pytest.raises(Conflict, match="not an empty directory"):
        BackupStore.create(tmp_path / "s")


def test_encrypted_chunks_hold_neither_the_data_nor_its_plain_hash(tmp_path: Path) -> None:
    key = StoreKey.from_secret(bytes(range(32)))
    store = BackupStore.create(tmp_path / "s", key)
    secret = b"top secret payload " * 1000
    stored = store.chunks.put(secret)
    raw = store.chunks.path(stored.name).read_bytes()
    assert b"top secret" not in raw
    assert stored.name != hashlib.sha256(secret).hexdigest()
    assert store.chunks.get(stored.name) == secret


def test_a_changed_manifest_fails_its_authentication(tmp_path: Path) -> None:
    store = BackupStore.create(tmp_path / "s", parse_key(new_key_text()))
    disk = Disk(4 * MIB)
    disk.write(0, b"abc")
    backup = _backup(store, disk, [(0, 4 * MIB)])
    path = tmp_path / "s" / "backups" / "web1" / f"{backup.id}.json"
    path.write_text(path.read_text().replace('"host": "local"', '"host": "evil"'))
    with pytest.raises(Exception, match="authentication"):
        store.manifests()


def _at(day: datetime, n: int) -> Manifest:
    return Manifest(id=f"b{n:03d}", vm="v", vm_uuid="u", host="h", created_at=day,
                    kind=BackupKind.FULL, consistency=Consistency.CRASH,
                    disks=[DiskManifest(target="vda", name="root", size_bytes=1, chunk_size=1,
                                        chunks=[])])  # fmt: skip


def test_retention_keeps_the_last_the_dailies_and_the_weeklies() -> None:
    start = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)  # a Sunday
    # Two backups a day for 30 days.
    backups = [_at(start + timedelta(hours=12 * i), i) for i in range(60)]
    assert kept(backups, Retention()) == {b.id for b in backups}
    assert kept(backups, Retention(keep_last=3)) == {"b057", "b058", "b059"}
    daily = kept(backups, Retention(keep_daily=2))
    assert daily == {"b059", "b057"}  # the newest of each of the last two days
    weekly = kept(backups, Retention(keep_weekly=2))
    assert len(weekly) == 2 and "b059" in weekly
    both = kept(backups, Retention(keep_last=1, keep_daily=3))
    assert both == {"b059", "b057", "b055"}
