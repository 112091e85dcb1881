"""Who is calling, and what their role allows."""

from __future__ import annotations

from dataclasses import dataclass

from corral.errors import PermissionDenied
from corral.model.auth import Role

_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: by API token (``token_id``), by browser session (``session_id``),
    or neither for work Corral does offline (``admin init``)."""

    user: str
    role: Role
    token_id: str | None = None
    #: Set when the caller is a browser session (cookie) rather than an API token.
    session_id: str | None = None

    def allows(self, needed: Role) -> bool:
        return _RANK[self.role] >= _RANK[needed]

    def require(self, needed: Role) -> None:
        if not self.allows(needed):
            raise PermissionDenied(
                f"user {self.user!r} has role {self.role.value}; this needs {needed.value} "
                "or higher: ask an admin to change your role"
            )


SYSTEM = Principal(user="corral", role=Role.ADMIN)
