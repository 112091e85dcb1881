"""Cluster networks: declared once, realised by Corral on every host.

A network's kind says what carries it: ``nat`` (a libvirt NAT network on each host, like
Corral's ``corral-nat``), ``isolated`` (a libvirt network with no way out, one per host),
``bridge`` (a Linux bridge on the NIC that carries the network's ``uplink`` label on each host:
NIC names differ between hosts, labels do not) or ``vxlan`` (one L2 segment across hosts,
tunnelled over their management addresses). Each host's realisation has a state:

* ``pending``: not yet applied (a host that is not connected stays so until it is);
* ``applied``: the host has it as declared;
* ``failed``: the last apply failed on that host (``reason`` says why; the host was left as it
  was before the apply);
* ``drifted``: applied once, but the host no longer matches (someone changed it by hand).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    Strict,
    StrictBool,
    StringConstraints,
    model_validator,
)

from corral.model.common import Description, Name


def _whole(value: object) -> object:
    """An integer as JSON Schema counts them (134.0 is one; the contract fuzzer sends such),
    never a string or a boolean (``"134"``, ``true``: refused, as the document says "integer").
    The bounds go first in each ``Annotated``: after the validator pydantic would write them
    into the JSON Schema as ``ge``/``le``, which no client reads."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


_WHOLE = (Strict(), BeforeValidator(_whole))

#: NIC names of Linux (IFNAMSIZ - 1 characters, no slash or blank).
NIC_PATTERN = r"^[A-Za-z0-9_.:@-]{1,15}$"
NicName = Annotated[str, StringConstraints(pattern=NIC_PATTERN)]
#: Labels administrators give host NICs (``lan``, ``storage``): short names.
LABEL_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
NicLabel = Annotated[str, StringConstraints(pattern=LABEL_PATTERN)]
#: NicSpec.network values that are not cluster networks (and libvirt's own default network).
RESERVED_NETWORK_NAMES = frozenset({"nat", "user", "corral-nat", "default"})
_RESERVED: list[JsonValue] = [*sorted(RESERVED_NETWORK_NAMES)]
VNI_MAX = 2**24 - 1


class NetworkKind(StrEnum):
    NAT = "nat"
    ISOLATED = "isolated"
    BRIDGE = "bridge"
    VXLAN = "vxlan"


class NetworkHostState(StrEnum):
    """A network on one host. pending -> applied | failed; applied -> drifted (found changed)
    -> applied (re-applied); any -> pending when the intent changes."""

    PENDING = "pending"
    APPLIED = "applied"
    FAILED = "failed"
    DRIFTED = "drifted"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _NetworkCreateBase(_Strict):
    name: Name = Field(
        description="also the libvirt network's name on every host; NICs name it "
        "(`--nic NAME`). Not nat, user, corral-nat or default",
        json_schema_extra={"not": {"enum": _RESERVED}},
    )
    required: StrictBool = Field(
        default=False,
        description="hosts lacking this network take no VM (placement) and no migration",
    )
    description: Description = ""

    @model_validator(mode="after")
    def _not_reserved(self) -> Self:
        if self.name in RESERVED_NETWORK_NAMES:
            raise ValueError(f"{self.name!r} is reserved: choose another network name")
        return self


class NatNetworkCreate(_NetworkCreateBase):
    """A libvirt NAT network on each host (guests reach out, nothing reaches in)."""

    kind: Literal[NetworkKind.NAT]


class IsolatedNetworkCreate(_NetworkCreateBase):
    """A libvirt network with no way out, on each host (not joined across hosts)."""

    kind: Literal[NetworkKind.ISOLATED]


class BridgeNetworkCreate(_NetworkCreateBase):
    """A bridge on the NIC carrying label ``uplink`` on each host: guests on the LAN."""

    kind: Literal[NetworkKind.BRIDGE]
    uplink: NicLabel = Field(description="the label of the NIC the bridge is put on, per host")
    vlan: Annotated[int, Field(ge=1, le=4094), *_WHOLE] | None = Field(
        default=None,
        description="carry the network tagged with this 802.1Q VLAN on the uplink (needs "
        "802.1Q in the host kernel)",
    )


class VxlanNetworkCreate(_NetworkCreateBase):
    """One L2 segment across hosts, tunnelled (VXLAN) between their management addresses."""

    kind: Literal[NetworkKind.VXLAN]
    vni: Annotated[int, Field(ge=1, le=VNI_MAX), *_WHOLE] = Field(
        description="the VXLAN network identifier (unique)"
    )


#: A new cluster network; ``kind`` says which fields it takes.
NetworkCreate = Annotated[
    NatNetworkCreate | IsolatedNetworkCreate | BridgeNetworkCreate | VxlanNetworkCreate,
    Field(discriminator="kind"),
]


def create_fields(request: NetworkCreate) -> tuple[str | None, int | None, int | None]:
    """``(uplink, vni, vlan)`` of any kind of request."""
    if isinstance(request, BridgeNetworkCreate):
        return request.uplink, None, request.vlan
    if isinstance(request, VxlanNetworkCreate):
        return None, request.vni, None
    return None, None, None


class NetworkEdit(_Strict):
    """What may change on an existing network (left out: unchanged)."""

    required: StrictBool | None = None
    description: Description | None = None
    uplink: NicLabel | None = Field(default=None, description="bridge networks only")


class NetworkOnHost(BaseModel):
    """How one host has a network."""

    host: str
    state: NetworkHostState
    reason: str | None = Field(default=None, description="why failed or drifted")
    updated_at: datetime | None = None


class NetworkInfo(BaseModel):
    name: str
    kind: NetworkKind
    uplink: str | None = None
    vni: int | None = None
    vlan: int | None = None
    required: bool
    description: str = ""
    bridge: str = Field(description="the bridge's name on every host (crlb-…)")
    created_at: datetime
    hosts: list[NetworkOnHost] = Field(default_factory=list)


class HostNic(BaseModel):
    """A network interface of a host as libvirt sees it, with Corral's labels."""

    name: str
    mac: str | None = None
    active: bool
    labels: list[str] = Field(default_factory=list)


class NicLabelInfo(BaseModel):
    host: str
    nic: str
    label: str


def bridge_name(network_id: str) -> str:
    """The bridge Corral makes for a network (≤ 15 characters, the kernel's limit)."""
    return f"crlb-{network_id[:8]}"


def vxlan_name(network_id: str) -> str:
    return f"crlv-{network_id[:8]}"
