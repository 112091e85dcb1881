"""The ORM tables: Corral's inventory and intent (libvirt stays the truth for runtime state).

Every datetime column is a :class:`~corral.store.coltypes.UtcDateTime`: aware UTC in, aware UTC out.
Enumerated columns (role, state, accelerator) are plain strings holding the ``StrEnum`` values of
``corral.model``; check constraints keep the database honest when something else writes to it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from corral.store.coltypes import UtcDateTime, utcnow

#: Deterministic constraint names: Alembic needs names to drop or alter constraints later, and
#: the same names on SQLite and PostgreSQL keep migrations portable.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME_LEN = 63


def _uuid_hex() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'operator', 'viewer')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class ApiToken(Base):
    """An API token. Only a SHA-256 of the secret is kept; ``prefix`` helps people recognise it."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uuid_hex)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    prefix: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    # Joined: a token is almost always wanted together with its owner (auth, listings).
    user: Mapped[User] = relationship(back_populates="tokens", lazy="joined")


class WebSession(Base):
    """A browser session: the cookie holds a secret whose SHA-256 is kept here (like tokens).
    ``csrf_token`` is not secret from its user: it proves a request came from Corral's pages."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uuid_hex)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    client: Mapped[str] = mapped_column(String(255), default="")

    user: Mapped[User] = relationship(lazy="joined")


class Host(Base):
    __tablename__ = "hosts"
    __table_args__ = (
        CheckConstraint("accelerator IS NULL OR accelerator IN ('kvm', 'tcg')", name="accelerator"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN), unique=True)
    uri: Mapped[str] = mapped_column(String(1024))
    accelerator: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Which libvirt daemon this is (``uuid:`` + capabilities' host UUID, else ``uri:`` + URI):
    #: unique, so one daemon is never registered twice under two names. NULL until the host
    #: was first reached.
    libvirt_id: Mapped[str | None] = mapped_column(String(1100), unique=True)
    #: Maintenance: the host takes no new VMs (placement skips it).
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Enrolled hosts: the address their certificates name (VNC and migration use it) and how
    #: Corral reaches them over SSH to rotate certificates (a key path on the Corral server).
    address: Mapped[str | None] = mapped_column(String(255))
    ssh_destination: Mapped[str | None] = mapped_column(String(300))
    ssh_port: Mapped[int | None] = mapped_column(Integer)
    ssh_key_path: Mapped[str | None] = mapped_column(String(1024))
    #: Standby: Corral powered the host down to save energy (a plan wakes it).
    standby: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: High availability: ok, suspect, fencing, fenced or recovering (``corral.model.ha``),
    #: why, and since when (the HA monitor resumes from here after a restart).
    ha_state: Mapped[str] = mapped_column(String(16), default="ok", server_default="ok")
    ha_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    ha_since: Mapped[datetime | None]


class HostPower(Base):
    """A host's power driver and power model. ``settings`` holds no secret; ``secret`` is a
    Fernet token (``corral.services.power.secrets``) of the driver's secrets."""

    __tablename__ = "host_power"
    __table_args__ = (
        CheckConstraint(
            "driver IS NULL OR driver IN ('ipmi', 'wol', 'suspend', 'ssh')", name="driver"
        ),
    )

    host_id: Mapped[int] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    )
    driver: Mapped[str | None] = mapped_column(String(16))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret: Mapped[str | None] = mapped_column(Text)
    model: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class HostSampleRow(Base):
    """A host's utilisation at one moment: raw samples for an hour, then 1-minute means
    (``minute``) for a day (``corral.store.samples.downsample``)."""

    __tablename__ = "host_samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(NAME_LEN), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    cpu: Mapped[float] = mapped_column(Float)
    memory_used_mib: Mapped[int] = mapped_column(Integer)
    memory_total_mib: Mapped[int] = mapped_column(Integer)
    standby: Mapped[bool] = mapped_column(Boolean, default=False)
    minute: Mapped[bool] = mapped_column(Boolean, default=False)


class VmSampleRow(Base):
    """A running VM's CPU use (share of its vCPUs) and memory at one moment."""

    __tablename__ = "vm_samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vm: Mapped[str] = mapped_column(String(NAME_LEN), index=True)
    host: Mapped[str] = mapped_column(String(NAME_LEN))
    at: Mapped[datetime] = mapped_column(index=True)
    cpu: Mapped[float] = mapped_column(Float)
    memory_mib: Mapped[int] = mapped_column(Integer)
    minute: Mapped[bool] = mapped_column(Boolean, default=False)


class Vm(Base):
    """A VM Corral knows about. Names are global across hosts (one namespace for the API)."""

    __tablename__ = "vms"
    __table_args__ = (
        CheckConstraint("accelerator IS NULL OR accelerator IN ('kvm', 'tcg')", name="accelerator"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN), unique=True)
    # RESTRICT: a host with VMs on it must not vanish from under them; the store says Conflict.
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="RESTRICT"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    adopted: Mapped[bool] = mapped_column(Boolean, default=False)
    accelerator: Mapped[str | None] = mapped_column(String(8))
    created_by: Mapped[str] = mapped_column(String(NAME_LEN))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    missing_since: Mapped[datetime | None]
    #: When Corral last saw the domain start (libvirt has no uptime API); None when unknown.
    started_at: Mapped[datetime | None]
    #: High availability: restarted elsewhere when its host dies, in this order (higher
    #: first); None when HA is off. ``ha_waiting``: why it could not be restarted yet.
    ha_priority: Mapped[int | None] = mapped_column(Integer)
    ha_waiting: Mapped[str | None] = mapped_column(Text)

    # Joined: callers need ``vm.host.name`` after the session has closed.
    host: Mapped[Host] = relationship(lazy="joined")


class HaDefinition(Base):
    """The last definition read of an HA VM's domain while its host answered: what it is
    defined from on another host when that host dies."""

    __tablename__ = "ha_definitions"

    vm_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    xml: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Template(Base):
    """A template: read-only base volumes on one host's storage and the definition new VMs
    are made from (its disks pointed at their own overlays or copies)."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # RESTRICT: the bases live on this host; removing it first needs the template gone.
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="RESTRICT"), index=True)
    source_vm: Mapped[str] = mapped_column(String(NAME_LEN))
    #: The source's persistent definition when the template was made (secrets included:
    #: never shown, only defined again under new names).
    xml: Mapped[str] = mapped_column(Text)
    #: [{"target", "volume", "path", "capacity_bytes"}], in the definition's disk order.
    disks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    arch: Mapped[str] = mapped_column(String(16))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(NAME_LEN))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    host: Mapped[Host] = relationship(lazy="joined")


class VmCloudInit(Base):
    """A VM's cloud-init settings, sealed (passwords as hashes) with the user-data it was given:
    what its seed is made from. Never shown: its digest, size and who set it are."""

    __tablename__ = "vm_cloud_init"

    vm_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    instance_id: Mapped[str] = mapped_column(String(64))
    user_data_digest: Mapped[str | None] = mapped_column(String(64))
    user_data_size: Mapped[int | None] = mapped_column(Integer)
    set_by: Mapped[str] = mapped_column(String(NAME_LEN))
    set_at: Mapped[datetime] = mapped_column(default=utcnow)


class BackupStoreRow(Base):
    """A backup store Corral writes to: a directory every instance reaches at ``path``; an
    encrypted one's key sealed with the secrets key (never shown)."""

    __tablename__ = "backup_stores"

    name: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    path: Mapped[str] = mapped_column(String(4096), unique=True)
    key_sealed: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(NAME_LEN))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')", name="state"
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uuid_hex)
    kind: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    phase: Mapped[str] = mapped_column(String(255), default="")
    bytes_done: Mapped[int | None] = mapped_column(BigInteger)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(NAME_LEN))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    #: The instance running the task, while its lease (renewed by that instance) lasts; an
    #: unfinished task whose lease expired is claimed by another instance.
    owner: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None]
    #: What an instance taking the task over needs to resume it (JSON, per kind).
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Fencing token: raised by every claim, so a former owner's late writes are refused.
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class Instance(Base):
    """A running (or once running) Corral process: ``serve`` writes its heartbeat."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]


class Lease(Base):
    """A job that must run once in the cluster: held by one instance until ``expires_at``;
    ``token`` grows with every change of holder (a fencing token)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(32))
    token: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime]


class OperationLock(Base):
    """A long operation on a VM by one instance; held while ``expires_at`` is renewed."""

    __tablename__ = "operation_locks"

    vm: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    operation: Mapped[str] = mapped_column(String(255))
    holder: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime]


class AuditEntry(Base):
    """One audit record. ``user`` is a name, not a foreign key: the log outlives deleted users."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    user: Mapped[str] = mapped_column(String(NAME_LEN), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(1024))
    detail: Mapped[str] = mapped_column(Text, default="")


class ClusterSetting(Base):
    """One cluster-wide setting an admin changed (``corral cluster set KEY VALUE``); settings
    never set have their default (``corral.model.cluster.ClusterSettings``)."""

    __tablename__ = "cluster_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(NAME_LEN))


class StorageDomainRow(Base):
    """A storage domain an administrator created (the built-in ``local`` one has no row).
    ``settings`` holds the kind's settings as created (no secret); ``marker`` is the random
    token a ``shared-dir`` domain's marker file holds (None for kinds without one)."""

    __tablename__ = "storage_domains"
    __table_args__ = (CheckConstraint("kind IN ('shared-dir', 'nfs', 'iscsi')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    marker: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(NAME_LEN))

    reach: Mapped[list[StorageDomainHostRow]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )


class StorageDomainHostRow(Base):
    """One host's reach of one domain, as last checked (no row: never checked)."""

    __tablename__ = "storage_domain_hosts"
    __table_args__ = (
        CheckConstraint("state IN ('reachable', 'unreachable', 'unchecked')", name="state"),
    )

    domain_id: Mapped[int] = mapped_column(
        ForeignKey("storage_domains.id", ondelete="CASCADE"), primary_key=True
    )
    host_id: Mapped[int] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[datetime | None]
    capacity_bytes: Mapped[int | None] = mapped_column(BigInteger)
    free_bytes: Mapped[int | None] = mapped_column(BigInteger)

    # Joined: the host's name is wanted with every row.
    host: Mapped[Host] = relationship(lazy="joined")


class Network(Base):
    """A cluster network (``corral.model.network``); realised on each host (NetworkHost)."""

    __tablename__ = "networks"
    __table_args__ = (
        CheckConstraint("kind IN ('nat', 'isolated', 'bridge', 'vxlan')", name="kind"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_uuid_hex)
    name: Mapped[str] = mapped_column(String(NAME_LEN), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    uplink: Mapped[str | None] = mapped_column(String(32))
    #: Unique: two vxlan networks on one VNI would be one segment.
    vni: Mapped[int | None] = mapped_column(Integer, unique=True)
    vlan: Mapped[int | None] = mapped_column(Integer)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class NetworkHost(Base):
    """How one host has one network: pending, applied, failed (``reason``) or drifted."""

    __tablename__ = "network_hosts"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'applied', 'failed', 'drifted')", name="state"),
    )

    network_id: Mapped[str] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True
    )
    host_id: Mapped[int] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class HostNicLabel(Base):
    """A label an administrator put on a host's NIC (bridge networks name labels, not NICs)."""

    __tablename__ = "host_nic_labels"

    host_id: Mapped[int] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(32), primary_key=True)
    nic: Mapped[str] = mapped_column(String(15))


class ConsoleTicket(Base):
    """A one-time console ticket waiting to be used, by any instance: only the SHA-256 of its
    secret is kept; redeeming deletes the row (once, whoever asks first). Times are epoch
    seconds of the issuing instance's clock."""

    __tablename__ = "console_tickets"

    secret_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(String(NAME_LEN), index=True)
    role: Mapped[str] = mapped_column(String(16))
    token_id: Mapped[str | None] = mapped_column(String(32))
    session_id: Mapped[str | None] = mapped_column(String(32))
    vm: Mapped[str] = mapped_column(String(NAME_LEN), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    origin: Mapped[str | None] = mapped_column(Text)
    view_only: Mapped[bool] = mapped_column(Boolean)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class LoginFailure(Base):
    """One failed login of a user name from a client address (epoch seconds); bounded and
    pruned by ``services/login_throttle.py``."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(255), index=True)
    client: Mapped[str] = mapped_column(String(255))
    failed_at: Mapped[float] = mapped_column(Float, index=True)


class EventRow(Base):
    """A published event, kept for a while so that every instance can deliver it (PostgreSQL's
    NOTIFY names its id) and an SSE client that reconnects can catch up (``Last-Event-ID``)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    origin: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SharedSecret(Base):
    """The fingerprint of a secret every instance must hold the same copy of (a CA key, the
    power secrets key): the first instance records it, later ones are refused if theirs
    differs."""

    __tablename__ = "shared_secrets"

    name: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(255))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
