"""What one backup holds: per disk its size and its chunks in order (None: all zeros), and
how it was made. Every manifest lists all of a disk's chunks, an incremental one too (it
shares the unchanged ones with its parent): any backup restores alone, and deleting one never
breaks another."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class BackupKind(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"


class Consistency(StrEnum):
    #: As if the power had been cut at that moment (the guest's journal recovers).
    CRASH = "crash-consistent"
    #: The guest agent froze the file systems while the backup point was taken.
    FROZEN = "frozen"
    #: The VM was shut off.
    OFFLINE = "offline"


class DiskManifest(BaseModel):
    target: str = Field(description="the disk's device in the guest (vda, sda…)")
    name: str = Field(description="the disk's name in Corral")
    size_bytes: int
    chunk_size: int
    chunks: list[str | None] = Field(description="chunk names in order; null: all zeros")
    bytes_read: int = 0
    bytes_new: int = 0


class Manifest(BaseModel):
    id: str
    vm: str
    vm_uuid: str
    host: str
    created_at: datetime
    kind: BackupKind
    why_full: str | None = Field(
        default=None, description="why a backup that could have been incremental is full"
    )
    parent: str | None = None
    checkpoint: str | None = Field(
        default=None, description="the libvirt checkpoint the next incremental starts from"
    )
    consistency: Consistency
    disks: list[DiskManifest]
    duration_s: float = 0.0
    #: The VM's definition at that time (without secrets): what a restore defines anew.
    definition: str | None = None
    #: HMAC of the rest, in an encrypted store (a changed manifest is detected).
    mac: str | None = None

    @property
    def bytes_read(self) -> int:
        return sum(d.bytes_read for d in self.disks)

    @property
    def bytes_new(self) -> int:
        return sum(d.bytes_new for d in self.disks)

    @property
    def size_bytes(self) -> int:
        return sum(d.size_bytes for d in self.disks)

    def chunk_names(self) -> set[str]:
        return {c for d in self.disks for c in d.chunks if c is not None}

    def signed_part(self) -> bytes:
        return self.model_copy(update={"mac": None}).model_dump_json().encode()
