"""Backup stores and backups as the API shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from corral.backup.manifest import BackupKind, Consistency
from corral.model.common import AbsolutePath, Name
from corral.model.vm import VmName


class BackupStoreCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    path: AbsolutePath = Field(
        description="a directory on Corral's machine (every instance's, when there are "
        "several: a shared mount), absent or empty: the store is made there"
    )
    key: str | None = Field(
        default=None,
        description="to encrypt the store: a key from `corral backup key new FILE` (its one "
        "line). Corral keeps it sealed and never shows it again; keep the file: without the "
        "key the backups cannot be read by anyone",
        json_schema_extra={"writeOnly": True},
    )


class BackupStoreInfo(BaseModel):
    name: str
    path: str
    encrypted: bool
    key_fingerprint: str | None = None
    backups: int = 0
    stored_bytes: int = Field(default=0, description="what the chunks take on disk")
    logical_bytes: int = Field(
        default=0, description="the sum of the backed-up disks' sizes, over every backup"
    )
    created_by: str
    created_at: datetime
    problem: str | None = Field(default=None, description="why the store cannot be read now")


class VmBackupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    store: Name
    full: bool = Field(
        default=False, strict=True, description="a full backup even when an incremental can be made"
    )


class BackupInfo(BaseModel):
    id: str
    store: str
    vm: str
    host: str
    created_at: datetime
    kind: BackupKind
    why_full: str | None = None
    parent: str | None = None
    consistency: Consistency
    size_bytes: int = Field(description="the disks' size")
    bytes_read: int = Field(description="what was read of the VM's disks")
    bytes_new: int = Field(description="what the backup added to the store")
    duration_s: float
    disks: list[str]


class BackupRestoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: VmName = Field(description="the new VM's name")
    host: Name | None = Field(default=None, description="where to make it (default: as placed)")
    start: bool = Field(default=False, strict=True)


class VerifyProblem(BaseModel):
    backup: str
    vm: str
    disk: str
    chunk: str
    why: str


class VerifyResult(BaseModel):
    store: str
    backups: int
    chunks: int
    bytes: int
    ok: bool
    problems: list[VerifyProblem]


class PruneRequest(BaseModel):
    """Which backups to keep (as Proxmox Backup Server counts them); the others are deleted,
    then the chunks no backup uses any more. With none of the three, nothing is deleted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vm: Name | None = Field(default=None, description="only this VM's backups")
    keep_last: int | None = Field(default=None, ge=1, le=10_000)
    keep_daily: int | None = Field(default=None, ge=1, le=10_000)
    keep_weekly: int | None = Field(default=None, ge=1, le=10_000)
    dry_run: bool = Field(
        default=False, strict=True, description="say what would go, delete nothing"
    )


class PruneResult(BaseModel):
    store: str
    removed: list[str] = Field(description="VM/backup ids deleted (or that would be)")
    kept: int
    chunks_removed: int
    bytes_freed: int
    dry_run: bool
