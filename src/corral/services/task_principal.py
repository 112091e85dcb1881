"""Who a task taken over from another instance acts for: the user who started it, with the
role that user has now (a demoted or deleted user's work does not go on under the old role)."""

from __future__ import annotations

from corral import store
from corral.errors import PermissionDenied
from corral.model.auth import Role
from corral.services._db import Db
from corral.services.principal import SYSTEM, Principal

#: Corral's own principals: they start tasks (the power policy, start-up work) but are no users.
_BUILT_IN = {SYSTEM.user: SYSTEM.role, "corral-power-policy": Role.ADMIN}


async def principal_of(db: Db, user: str) -> Principal:
    """The principal a resumed task of ``user`` runs as (PermissionDenied: the user is gone)."""
    if user in _BUILT_IN:
        return Principal(user=user, role=_BUILT_IN[user])
    role = await db(lambda s: getattr(store.find_user(s, user), "role", None))
    if role is None:
        raise PermissionDenied(
            f"user {user!r}, who started the task, no longer exists: nothing more was done"
        )
    return Principal(user=user, role=Role(role))
