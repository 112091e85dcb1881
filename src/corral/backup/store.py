"""A backup store on disk::

    STORE/corral-store.json           version, chunk size, encrypted or not, key fingerprint
    STORE/chunks/ab/abcdef…           chunks (:mod:`.chunks`)
    STORE/backups/VM/ID.json          one manifest per backup (:mod:`.manifest`)
    STORE/.lock                       writers hold it shared, garbage collection exclusive

A backup writes its chunks first and its manifest last (temporary file, fsync, rename): an
interrupted backup leaves chunks no manifest names (GC removes them), never a manifest that
names missing chunks. Manifests in an encrypted store carry an HMAC.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, Field, ValidationError

from corral.backup.chunks import CHUNK_SIZE, ChunkStore, CorruptChunk
from corral.backup.keys import StoreKey
from corral.backup.manifest import DiskManifest, Manifest
from corral.errors import Conflict, CorralError, InvalidRequest, NotFound
from corral.files import write_atomic

CONFIG = "corral-store.json"
VERSION = 1
#: Reads ``length`` bytes of the disk at ``offset``.
Reader = Callable[[int, int], bytes]
#: (offset, length) ranges of a disk, sorted, not overlapping.
Ranges = list[tuple[int, int]]


class StoreConfig(BaseModel):
    version: int = VERSION
    chunk_size: int = CHUNK_SIZE
    encrypted: bool = False
    key_fingerprint: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Problem:
    backup: str
    vm: str
    disk: str
    chunk: str
    why: str


@dataclass
class VerifyReport:
    backups: int = 0
    chunks: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class GcReport:
    chunks_removed: int = 0
    bytes_freed: int = 0
    chunks_kept: int = 0
    leftovers_removed: int = 0


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


def _covered(ranges: Ranges, start: int, end: int) -> Ranges:
    """The parts of ``ranges`` inside [start, end), relative to ``start``."""
    found = []
    for offset, length in ranges:
        low, high = max(offset, start), min(offset + length, end)
        if low < high:
            found.append((low - start, high - low))
    return found


class BackupStore:
    def __init__(self, root: Path, config: StoreConfig, key: StoreKey | None) -> None:
        self.root = root
        self.config = config
        self.key = key
        self.chunks = ChunkStore(root / "chunks", key)

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def create(cls, root: Path, key: StoreKey | None = None) -> BackupStore:
        """A new store in ``root`` (absent or an empty directory)."""
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise Conflict(f"{root} is not an empty directory: a new backup store needs one")
        root.mkdir(parents=True, exist_ok=True)
        config = StoreConfig(
            encrypted=key is not None, key_fingerprint=key.fingerprint if key else None
        )
        _write_atomic(root / CONFIG, config.model_dump_json(indent=1).encode())
        (root / "chunks").mkdir(exist_ok=True)
        (root / "backups").mkdir(exist_ok=True)
        return cls(root, config, key)

    @classmethod
    def open(cls, root: Path, key: StoreKey | None = None) -> BackupStore:
        try:
            config = StoreConfig.model_validate_json((root / CONFIG).read_bytes())
        except FileNotFoundError:
            raise NotFound(
                f"{root} is not a backup store (no {CONFIG}): is the directory reachable and "
                "mounted?"
            ) from None
        except (OSError, ValidationError) as exc:
            raise CorralError(f"the backup store {root} cannot be read: {exc}") from None
        if config.version != VERSION:
            raise Conflict(
                f"backup store {root} has version {config.version}; Corral reads {VERSION}"
            )
        if config.encrypted and key is None:
            raise InvalidRequest(
                f"backup store {root} is encrypted: give its key (without the key its backups "
                "cannot be read by anyone)"
            )
        if not config.encrypted and key is not None:
            raise InvalidRequest(f"backup store {root} is not encrypted: give no key")
        if key is not None and key.fingerprint != config.key_fingerprint:
            raise InvalidRequest(
                f"this key is not the key of backup store {root} (its fingerprint is "
                f"{key.fingerprint}, the store's {config.key_fingerprint})"
            )
        return cls(root, config, key)

    # -- locks -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, exclusive: bool, what: str) -> Iterator[None]:
        with (self.root / ".lock").open("a") as handle:
            mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            try:
                fcntl.flock(handle, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                busy = "a backup runs" if exclusive else "garbage collection runs"
                raise Conflict(f"backup store {self.root} is busy ({busy}): {what} later") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def writing(self) -> contextlib.AbstractContextManager[None]:
        """Held while a backup writes chunks and its manifest (GC waits)."""
        return self._locked(False, "back up")

    # -- writing a backup ------------------------------------------------------------------
    def write_disk(
        self,
        target: str,
        name: str,
        size: int,
        data: Ranges,
        read: Reader,
        previous: list[str | None] | None = None,
        cancelled: Callable[[], bool] = lambda: False,
        progress: Callable[[int, int], None] = lambda done, new: None,
    ) -> DiskManifest:
        """Store a disk of ``size`` bytes. ``data``: the ranges to read (what the disk holds,
        or what changed since ``previous``, the chunks of the last backup: chunks outside
        every range are that backup's, or zeros without one). Only those ranges are read."""
        step = self.config.chunk_size
        count = (size + step - 1) // step
        if previous is not None and len(previous) != count:
            previous = None  # the disk changed size: nothing can be taken over
        chunks: list[str | None] = []
        read_bytes = new_bytes = 0
        for index in range(count):
            if cancelled():
                raise Conflict("the backup was cancelled")
            start = index * step
            end = min(size, start + step)
            parts = _covered(data, start, end)
            before = previous[index] if previous is not None else None
            if not parts:
                chunks.append(before)
                continue
            if len(parts) == 1 and parts[0] == (0, end - start):
                buffer = bytearray(read(start, end - start))
            else:
                buffer = bytearray(self.chunks.get(before) if before else bytes(end - start))
                for offset, length in parts:
                    buffer[offset : offset + length] = read(start + offset, length)
            read_bytes += sum(length for _, length in parts)
            if len(buffer) != end - start:
                raise CorralError(f"disk {target} gave {len(buffer)} bytes for chunk {index}")
            if not any(buffer):
                chunks.append(None)
                continue
            stored = self.chunks.put(bytes(buffer))
            new_bytes += stored.stored_bytes
            chunks.append(stored.name)
            progress(read_bytes, new_bytes)
        return DiskManifest(target=target, name=name, size_bytes=size, chunk_size=step,
                            chunks=chunks, bytes_read=read_bytes, bytes_new=new_bytes)  # fmt: skip

    def commit(self, manifest: Manifest) -> Manifest:
        """Write the manifest (its chunks are all stored): the backup exists from now on."""
        missing = [c for c in manifest.chunk_names() if not self.chunks.has(c)]
        if missing:
            raise CorralError(
                f"backup {manifest.id}: {len(missing)} chunk(s) are missing; not saved"
            )
        if self.key is not None:
            manifest = manifest.model_copy(update={"mac": self.key.name(manifest.signed_part())})
        path = self._manifest_path(manifest.vm, manifest.id)
        _write_atomic(path, manifest.model_dump_json(indent=1).encode())
        return manifest

    # -- reading ------------------------------------------------------------------------------
    def _manifest_path(self, vm: str, backup: str) -> Path:
        if "/" in vm or "/" in backup or vm.startswith(".") or backup.startswith("."):
            raise InvalidRequest(f"no backup {backup!r} of VM {vm!r}")
        return self.root / "backups" / vm / f"{backup}.json"

    def _load(self, path: Path) -> Manifest:
        manifest = Manifest.model_validate_json(path.read_bytes())
        if self.key is not None:
            expected = self.key.name(manifest.signed_part())
            if manifest.mac is None or not hmac.compare_digest(manifest.mac, expected):
                raise CorralError(f"backup {manifest.id}'s manifest fails its authentication")
        return manifest

    def manifests(self, vm: str | None = None) -> list[Manifest]:
        """The backups, oldest first (of ``vm`` only, when given)."""
        base = self.root / "backups"
        dirs = [base / vm] if vm is not None else sorted(p for p in base.iterdir() if p.is_dir())
        found = []
        for directory in dirs:
            for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
                found.append(self._load(path))
        return sorted(found, key=lambda m: (m.created_at, m.id))

    def manifest(self, vm: str, backup: str) -> Manifest:
        path = self._manifest_path(vm, backup)
        if not path.is_file():
            raise NotFound(f"no backup {backup!r} of VM {vm!r} in store {self.root}")
        return self._load(path)

    def check_disk(self, disk: DiskManifest) -> None:
        """Every chunk of ``disk`` reads back as named (CorruptChunk otherwise): restore runs
        it before writing a byte."""
        for name in dict.fromkeys(c for c in disk.chunks if c is not None):
            self.chunks.get(name)

    def restore_disk(
        self,
        disk: DiskManifest,
        out: BinaryIO,
        progress: Callable[[int], None] = lambda done: None,
    ) -> None:
        """Write ``disk``'s bytes to ``out`` (a file of its size, zero-filled or sparse: zero
        chunks are skipped)."""
        for index, name in enumerate(disk.chunks):
            start = index * disk.chunk_size
            if name is not None:
                out.seek(start)
                out.write(self.chunks.get(name))
            progress(min(disk.size_bytes, start + disk.chunk_size))
        if disk.size_bytes and disk.chunks and disk.chunks[-1] is None:
            out.seek(disk.size_bytes - 1)  # a zero tail: the file's length, sparse
            out.write(b"\0")
        out.truncate(disk.size_bytes)

    # -- verify, prune, garbage collection ----------------------------------------------------
    def verify(self, vm: str | None = None) -> VerifyReport:
        """Re-read and re-hash every chunk of every backup (each chunk once)."""
        report = VerifyReport()
        checked: dict[str, str | None] = {}
        for manifest in self.manifests(vm):
            report.backups += 1
            for disk in manifest.disks:
                for name in disk.chunks:
                    if name is None:
                        continue
                    if name not in checked:
                        try:
                            report.bytes += len(self.chunks.get(name))
                            checked[name] = None
                        except CorruptChunk as exc:
                            checked[name] = exc.message
                        report.chunks += 1
                    why = checked[name]
                    if why is not None:
                        report.problems.append(
                            Problem(manifest.id, manifest.vm, disk.target, name, why)
                        )
        return report

    def delete_backup(self, vm: str, backup: str) -> None:
        path = self._manifest_path(vm, backup)
        if not path.is_file():
            raise NotFound(f"no backup {backup!r} of VM {vm!r} in store {self.root}")
        path.unlink()
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # its last one

    def gc(self) -> GcReport:
        """Delete the chunks no manifest names, and temporary files of interrupted writes.
        Refused while a backup writes (it holds chunks no manifest names yet)."""
        report = GcReport()
        with self._locked(True, "collect garbage"):
            used: set[str] = set()
            for manifest in self.manifests():
                used |= manifest.chunk_names()
            for name in list(self.chunks.names()):
                if name in used:
                    report.chunks_kept += 1
                    continue
                report.bytes_freed += self.chunks.delete(name)
                report.chunks_removed += 1
            for leftover in list(self.chunks.leftovers()):
                leftover.unlink()
                report.leftovers_removed += 1
        return report

    def usage(self) -> dict[str, int]:
        """Bytes the chunks take, and the disks' bytes the backups describe."""
        stored = sum(self.chunks.path(n).stat().st_size for n in self.chunks.names())
        logical = sum(m.size_bytes for m in self.manifests())
        return {"stored_bytes": stored, "logical_bytes": logical}
