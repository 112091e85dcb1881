"""Cluster-wide settings an admin changes through the API (``corral cluster set``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from corral.model.placement import PlacementPolicy, PolicySettings, PowerModel
from corral.model.power import HostCount, PowerPolicyMode, Watts

_KNOBS = PolicySettings.model_fields
_MODEL = PowerModel.model_fields


class ClusterSettings(BaseModel):
    """Every cluster setting with its value (the default when nobody changed it)."""

    allow_insecure_migration: bool = Field(
        default=False,
        description="let migrations ask for transport 'insecure' (plain TCP: guest memory "
        "crosses the network unencrypted). Hosts accept such streams only once their "
        "configuration was reinstalled after the change (`corral host rotate-certs NAME`)",
    )
    power_policy: PowerPolicyMode = Field(
        default=PowerPolicyMode.MANUAL,
        description="manual: `corral power plan` recommends, a person applies; auto: Corral "
        "applies non-empty plans by itself once the previous one finished",
    )
    placement_policy: PlacementPolicy = Field(
        default=PlacementPolicy.POWER_SAVING,
        description="power_saving packs VMs and puts idle hosts in standby; "
        "evenly_distributed spreads VMs and only relieves over-used hosts",
    )
    memory_overcommit: float = _KNOBS["memory_overcommit"].default
    cpu_overcommit: float = _KNOBS["cpu_overcommit"].default
    high_utilisation: float = _KNOBS["high_utilisation"].default
    low_utilisation: float = _KNOBS["low_utilisation"].default
    hosts_in_reserve: int = _KNOBS["hosts_in_reserve"].default
    sustained_minutes: float = _KNOBS["sustained_minutes"].default
    power_idle_w: float = Field(
        default=_MODEL["idle_w"].default, description="default power model: watts at 0 % CPU"
    )
    power_max_w: float = Field(
        default=_MODEL["max_w"].default, description="default power model: watts at 100 % CPU"
    )
    power_standby_w: float = Field(
        default=_MODEL["standby_w"].default, description="default power model: watts in standby"
    )

    def policy(self) -> PolicySettings:
        """The planner's knobs."""
        return PolicySettings(
            policy=self.placement_policy,
            memory_overcommit=self.memory_overcommit,
            cpu_overcommit=self.cpu_overcommit,
            high_utilisation=self.high_utilisation,
            low_utilisation=self.low_utilisation,
            hosts_in_reserve=self.hosts_in_reserve,
            sustained_minutes=self.sustained_minutes,
        )

    def power_model(self) -> PowerModel:
        """The default power model of hosts without one of their own."""
        return PowerModel(
            idle_w=self.power_idle_w, max_w=self.power_max_w, standby_w=self.power_standby_w
        )


class ClusterSettingsUpdate(BaseModel):
    """``PATCH /cluster/settings``: the settings to change; absent ones stay. Ranges are the
    schema's; rules across settings (low below high, standby ≤ idle ≤ max watts) are checked
    against the settings as they are after the change (409 when broken)."""

    model_config = ConfigDict(extra="forbid")

    allow_insecure_migration: StrictBool | None = None
    power_policy: PowerPolicyMode | None = None
    placement_policy: PlacementPolicy | None = None
    memory_overcommit: Annotated[float, Field(strict=True, gt=0, le=10)] | None = None
    cpu_overcommit: Annotated[float, Field(strict=True, gt=0, le=64)] | None = None
    high_utilisation: Annotated[float, Field(strict=True, gt=0, le=1)] | None = None
    low_utilisation: Annotated[float, Field(strict=True, ge=0, lt=1)] | None = None
    hosts_in_reserve: HostCount | None = None
    sustained_minutes: Annotated[float, Field(strict=True, gt=0, le=24 * 60)] | None = None
    power_idle_w: Watts | None = None
    power_max_w: Watts | None = None
    power_standby_w: Watts | None = None
