"""Host power: drivers and their configuration, power states, plans as the API shows them,
and utilisation samples.

A host's power driver is configured per host (``PUT /hosts/NAME/power``). Secrets (a BMC's
password) go in with the request and never come out: ``HostPowerInfo`` says only whether one
is stored.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from corral.model.host import HostAddress, HostStatus
from corral.model.placement import Plan, PowerModel


class PowerDriverKind(StrEnum):
    """How Corral switches a host on and off.

    ipmi     the host's BMC over IPMI-over-LAN (RMCP+): on, off and the real power state
    wol      a Wake-on-LAN magic packet: on only (pair it with a host that sleeps by itself)
    suspend  libvirt's node suspend (``virNodeSuspendForDuration``): off; on by the host's RTC
             after ``duration_s``, or by a Wake-on-LAN packet (``wake``)
    ssh      ``systemctl suspend`` or ``systemctl poweroff`` over Corral's SSH access to the
             host (enrolled hosts): off; on by Wake-on-LAN (``wake``)
    """

    IPMI = "ipmi"
    WOL = "wol"
    SUSPEND = "suspend"
    SSH = "ssh"


class PowerState(StrEnum):
    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"


#: 6 bytes in hex, ``:`` or ``-`` between them.
MAC_PATTERN = r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$"
MacAddress = Annotated[str, StringConstraints(pattern=MAC_PATTERN, min_length=17, max_length=17)]
#: An IPv4 address (a broadcast address for magic packets).
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_PATTERN = rf"^({_OCTET}\.){{3}}{_OCTET}$"
Ipv4Address = Annotated[str, StringConstraints(pattern=IPV4_PATTERN, min_length=7, max_length=15)]
#: IPMI user names and passwords: printable ASCII; IPMI 2.0 allows 16 and 20 bytes.
IpmiUser = Annotated[str, StringConstraints(pattern=r"^[!-~]{1,16}$", min_length=1, max_length=16)]
IpmiPassword = Annotated[
    str, StringConstraints(pattern=r"^[ -~]{1,20}$", min_length=1, max_length=20)
]


def not_bool(value: object) -> object:
    """A BeforeValidator for whole numbers: JSON's true/false are not 1/0."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true or false")
    return value


#: A whole number as JSON has it (``5`` or ``5.0``), never a boolean.
WholeNumber = Annotated[int, BeforeValidator(not_bool)]
#: A WholeNumber from 0 to 10,000. Bounds go before the validator: written after it
#: (``Annotated[WholeNumber, Field(ge=…)]``), pydantic puts them in the JSON schema as ``ge`` and
#: ``le``, words no client reads, so generated requests broke them and got a 422.
HostCount = Annotated[int, Field(ge=0, le=10_000), BeforeValidator(not_bool)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WakeOnLan(_Strict):
    """Where a magic packet goes: the host's MAC, sent to a broadcast address of its LAN."""

    mac: MacAddress
    broadcast: Ipv4Address = Field(
        default="255.255.255.255", description="the LAN's broadcast address (or the host's)"
    )
    port: WholeNumber = Field(default=9, ge=1, le=65535)


#: Watts in a request: a number (JSON booleans are not numbers here).
Watts = Annotated[float, Field(strict=True, ge=0, le=100_000)]


class PowerModelRequest(_Strict):
    """A host's power model as a request gives it (``standby_w ≤ idle_w ≤ max_w`` is checked
    against the whole model: 409 when broken)."""

    idle_w: Watts = 100.0
    max_w: Watts = 250.0
    standby_w: Watts = 10.0


class IpmiDriver(_Strict):
    driver: Literal["ipmi"]
    address: HostAddress = Field(description="the BMC's IP address or DNS name")
    port: WholeNumber = Field(default=623, ge=1, le=65535, description="the BMC's UDP port")
    user: IpmiUser
    password: IpmiPassword | None = Field(
        default=None,
        description="stored encrypted, never shown again; leave it out to keep the stored one",
    )


class WolDriver(WakeOnLan):
    driver: Literal["wol"]


class SuspendDriver(_Strict):
    driver: Literal["suspend"]
    target: Literal["mem", "disk", "hybrid"] = "mem"
    duration_s: WholeNumber = Field(
        default=0,
        ge=0,
        le=365 * 86400,
        description="the host's RTC wakes it after this long; 0: it sleeps until woken (wake)",
    )
    wake: WakeOnLan | None = None


class SshDriver(_Strict):
    driver: Literal["ssh"]
    action: Literal["suspend", "poweroff"] = "poweroff"
    wake: WakeOnLan | None = None


PowerDriverConfig = Annotated[
    IpmiDriver | WolDriver | SuspendDriver | SshDriver, Field(discriminator="driver")
]


class HostPowerSettings(_Strict):
    """``PUT /hosts/NAME/power``: the host's driver (None: none, which removes it) and its
    power model (None: the cluster's defaults)."""

    driver: PowerDriverConfig | None = None
    model: PowerModelRequest | None = None


class HostPowerInfo(BaseModel):
    """A host's power configuration as the API shows it: no secret, only whether one is set."""

    host: str
    driver: PowerDriverKind | None = None
    settings: dict[str, object] = Field(
        default_factory=dict, description="the driver's settings, secrets left out"
    )
    password_set: bool = False
    can_power_on: bool = False
    can_power_off: bool = False
    model: PowerModel = Field(description="the power model in force (the host's or the default)")
    model_is_default: bool = True


class HostPowerStatus(BaseModel):
    name: str
    status: HostStatus
    standby: bool
    driver: PowerDriverKind | None = None
    can_power_on: bool = False
    can_power_off: bool = False
    cpu: float | None = Field(default=None, description="newest sampled CPU utilisation (0-1)")
    memory_used_mib: int | None = None
    watts: float = Field(
        description="estimated power now: the host's power model at its measured CPU use "
        "(everything it runs; a plan's watts count only the VMs' CPU use)"
    )


class PowerPolicyMode(StrEnum):
    """manual: plans are recommended only; auto: Corral applies them by itself."""

    MANUAL = "manual"
    AUTO = "auto"


class PowerStatus(BaseModel):
    mode: PowerPolicyMode
    placement_policy: str
    hosts: list[HostPowerStatus]
    watts: float = Field(description="the hosts' watts added up")
    running_task: str | None = Field(default=None, description="the power task running now")


class PowerPlan(BaseModel):
    """A plan with an id to apply it by (``POST /power/apply``); plans are kept for an hour."""

    id: str
    created_at: datetime
    mode: PowerPolicyMode
    plan: Plan
    notes: list[str] = Field(
        default_factory=list,
        description="what the planner was not told to touch and why (hosts without a driver, "
        "unreachable, not enrolled…)",
    )


PlanId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$", min_length=32, max_length=32)]


class ApplyRequest(_Strict):
    """``POST /power/apply``: the plan reviewed (its id), or none to plan and apply now."""

    plan_id: PlanId | None = None


class HostSample(BaseModel):
    """One host's utilisation at one moment (``minute``: a 1-minute mean of raw samples)."""

    host: str
    at: datetime
    cpu: float
    memory_used_mib: int
    memory_total_mib: int
    standby: bool = False
    minute: bool = False


class VmSample(BaseModel):
    vm: str
    host: str
    at: datetime
    cpu: float
    memory_mib: int
    minute: bool = False
