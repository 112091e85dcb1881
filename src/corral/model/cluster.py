"""Cluster-wide settings an admin changes through the API (``corral cluster set``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool


class ClusterSettings(BaseModel):
    """Every cluster setting with its value (the default when nobody changed it)."""

    allow_insecure_migration: bool = Field(
        default=False,
        description="let migrations ask for transport 'insecure' (plain TCP: guest memory "
        "crosses the network unencrypted). Hosts accept such streams only once their "
        "configuration was reinstalled after the change (`corral host rotate-certs NAME`)",
    )


class ClusterSettingsUpdate(BaseModel):
    """``PATCH /cluster/settings``: the settings to change; absent ones stay."""

    model_config = ConfigDict(extra="forbid")

    allow_insecure_migration: StrictBool | None = None
