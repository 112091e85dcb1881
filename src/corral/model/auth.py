"""Users, roles, API tokens and the audit log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from corral.model.common import Name


class Role(StrEnum):
    """admin: everything incl. users; operator: manage VMs; viewer: read only."""

    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


class UserInfo(BaseModel):
    name: str
    role: Role
    created_at: datetime
    disabled: bool = False


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    password: str = Field(min_length=12, max_length=1024)
    role: Role = Role.VIEWER


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # User and token names follow the name rules: a login with any other user name could not
    # succeed anyway, and the database never sees characters it cannot store (NUL).
    username: Name
    password: str = Field(min_length=1, max_length=1024)
    token_name: Name = "cli"
    expires_in_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="days until the new token expires; default: the server's "
        "api_login_token_days (30 unless configured)",
    )


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenInfo(BaseModel):
    id: str
    name: str
    user: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked: bool = False


class NewToken(TokenInfo):
    """Returned once on creation: ``secret`` is never shown again."""

    secret: str


class AuditEntry(BaseModel):
    id: int
    at: datetime
    user: str
    action: str
    target: str
    outcome: str
    detail: str = ""
