"""Cluster-wide settings: read by every use case that needs them, changed by admins (audited,
with the old and the new value)."""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from corral import store
from corral.errors import Conflict
from corral.model.auth import Role
from corral.model.cluster import ClusterSettings, ClusterSettingsUpdate
from corral.services._db import Db
from corral.services.audit import AuditService
from corral.services.principal import Principal


class ClusterSettingsService:
    def __init__(self, db: Db, audit: AuditService) -> None:
        self._db = db
        self._audit = audit

    async def get(self) -> ClusterSettings:
        stored = await self._db(store.cluster_settings)
        known = {k: v for k, v in stored.items() if k in ClusterSettings.model_fields}
        return ClusterSettings.model_validate(known)

    async def update(self, principal: Principal, update: ClusterSettingsUpdate) -> ClusterSettings:
        principal.require(Role.ADMIN)
        current = await self.get()
        changes: dict[str, Any] = update.model_dump(mode="json", exclude_none=True)
        _check_combined(current, changes)
        for key, value in changes.items():
            old = getattr(current, key)
            await self._db(partial(_set, key=key, value=value, user=principal.user))
            await self._audit.record(
                principal.user, "cluster.setting", key, "ok", f"{old!r} -> {value!r}"
            )
        return await self.get()


def _check_combined(current: ClusterSettings, changes: dict[str, Any]) -> None:
    """Rules across settings, on the settings as they would be: 409 when one breaks."""
    after = current.model_copy(update=changes)
    try:
        after.policy()
        after.power_model()
    except ValidationError as exc:
        why = "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in exc.errors())
        raise Conflict(f"the cluster settings would not fit together: {why}") from None


def _set(session: Session, *, key: str, value: Any, user: str) -> None:
    store.set_cluster_setting(session, key, value, user)
