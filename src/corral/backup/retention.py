"""Which backups a retention policy keeps, as Proxmox Backup Server counts them: the newest
``keep_last``; the newest backup of each of the ``keep_daily`` most recent days that have
one; the same per ISO week for ``keep_weekly``. A backup any rule keeps stays. Each manifest
lists all its chunks, so removing any backup never breaks another."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from corral.backup.manifest import Manifest


class Retention(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_last: int | None = Field(default=None, ge=1, le=10_000)
    keep_daily: int | None = Field(default=None, ge=1, le=10_000)
    keep_weekly: int | None = Field(default=None, ge=1, le=10_000)

    @property
    def keeps_all(self) -> bool:
        return self.keep_last is None and self.keep_daily is None and self.keep_weekly is None


def _newest_per(
    backups: Sequence[Manifest], count: int, period: Callable[[Manifest], Hashable]
) -> set[str]:
    kept: set[str] = set()
    seen: set[Hashable] = set()
    for manifest in backups:  # newest first
        key = period(manifest)
        if key in seen:
            continue
        if len(seen) == count:
            break
        seen.add(key)
        kept.add(manifest.id)
    return kept


def kept(backups: Sequence[Manifest], policy: Retention) -> set[str]:
    """The ids of the backups (of one VM) ``policy`` keeps."""
    if policy.keeps_all:
        return {m.id for m in backups}
    newest = sorted(backups, key=lambda m: (m.created_at, m.id), reverse=True)
    keep: set[str] = set()
    if policy.keep_last:
        keep |= {m.id for m in newest[: policy.keep_last]}
    if policy.keep_daily:
        keep |= _newest_per(newest, policy.keep_daily, lambda m: m.created_at.date())
    if policy.keep_weekly:
        keep |= _newest_per(newest, policy.keep_weekly, lambda m: m.created_at.isocalendar()[:2])
    return keep


def to_remove(backups: Sequence[Manifest], policy: Retention) -> list[Manifest]:
    keep = kept(backups, policy)
    return [m for m in backups if m.id not in keep]
