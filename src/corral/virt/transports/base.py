"""The interface every migration transport implements, built-in or third-party.

A transport decides *how* the source host reaches the destination during a live migration:
which libvirt URI the source's libvirtd opens to the destination's (migrations are
peer-to-peer: the source's libvirtd drives them, so they survive a restart of Corral), where
QEMU's migration stream goes, and which libvirt flags protect it. It is pure: it only turns
facts about two hosts and a request into a :class:`MigrationPlan`; ``corral.virt`` executes
the plan (``virDomainMigrateToURI3``).

A transport's prerequisites on the hosts themselves (an SSH key, a known host key, a tunnel)
are checked by :meth:`~MigrationTransport.prerequisites` through a command runner Corral hands
it (:data:`RunOnSource`), so the transport stays free of I/O.

Write one by subclassing :class:`MigrationTransport` (implement :meth:`~MigrationTransport.route`,
optionally :meth:`~MigrationTransport.check` and :meth:`~MigrationTransport.prerequisites`) and
registering the class under the entry-point group ``corral.migration_transports``; see
``docs/migration-transports.md``.
"""

from __future__ import annotations

import abc
import ipaddress
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from corral.model.migration import MigrationRequest, StorageMode

#: Entry-point group transports register under.
ENTRY_POINT_GROUP = "corral.migration_transports"


class MigrationFlag(StrEnum):
    """libvirt's ``VIR_MIGRATE_*`` flags a plan may carry (``corral.virt`` maps them)."""

    LIVE = "live"
    PEER2PEER = "peer2peer"
    TUNNELLED = "tunnelled"
    TLS = "tls"
    PERSIST_DEST = "persist_dest"
    UNDEFINE_SOURCE = "undefine_source"
    AUTO_CONVERGE = "auto_converge"
    POSTCOPY = "postcopy"
    PARALLEL = "parallel"
    NON_SHARED_DISK = "non_shared_disk"
    ABORT_ON_ERROR = "abort_on_error"
    COMPRESSED = "compressed"
    #: libvirt's own check knows shared storage only by filesystem type (NFS, GFS2, Ceph…);
    #: set when every disk not copied is on a storage domain Corral proved shared (a marker
    #: file every host sees) and opened with ``cache='none'``.
    UNSAFE = "unsafe"


@dataclass(frozen=True)
class MigrationEndpoint:
    """What a transport may know about a host taking part in a migration."""

    name: str
    #: The address enrollment gave the host (its certificates name it); None for a host added
    #: by URI, for which Corral issued no certificates.
    address: str | None
    #: How Corral itself reaches the host's libvirtd.
    libvirt_uri: str
    #: The host holds a libvirt client certificate from Corral (``CN=corral-host-NAME``), so
    #: its libvirtd can open other hosts' over TLS (hosts enrolled or rotated since 0.1).
    peer_client_cert: bool = False
    #: SSH access Corral recorded at enrollment (``root@ADDRESS``, port).
    ssh_destination: str | None = None
    ssh_port: int | None = None


@dataclass(frozen=True)
class Route:
    """How the source reaches the destination: a transport's own decision."""

    #: The libvirt URI the source's libvirtd opens (peer-to-peer control connection).
    destination_uri: str
    #: Where QEMU sends the migration stream (``VIR_MIGRATE_PARAM_URI``); None: libvirt
    #: chooses (the destination's host name), or the stream is tunnelled.
    stream_uri: str | None = None
    #: Transport flags, e.g. TLS or TUNNELLED.
    flags: frozenset[MigrationFlag] = frozenset()
    #: The name to check in the destination's migration certificate when it is not the
    #: host in ``stream_uri`` (``VIR_MIGRATE_PARAM_TLS_DESTINATION``).
    tls_destination: str | None = None


@dataclass(frozen=True)
class CommandResult:
    """What a command run on a host answered."""

    exit_status: int
    #: What it printed, standard output and standard error together.
    output: str


#: Runs a command (an argv, no shell) on the migration's *source* host, as the user Corral
#: reaches that host as over SSH, and answers what it did. Raises ``corral.errors.CorralError``
#: when Corral cannot run commands there (no SSH access on record, SSH to it failed): the
#: prerequisites are then unknown, which Corral says without refusing the migration.
RunOnSource = Callable[[Sequence[str]], Awaitable[CommandResult]]


@dataclass(frozen=True)
class MigrationPlan:
    """Everything ``corral.virt`` needs to run one migration."""

    transport: str
    destination_uri: str
    flags: frozenset[MigrationFlag]
    stream_uri: str | None = None
    tls_destination: str | None = None
    max_downtime_ms: int = 300
    bandwidth_mib_s: int | None = None
    parallel_connections: int | None = None
    #: auto-converge: initial vCPU throttle and its step per pass, percent.
    auto_converge_initial: int | None = None
    auto_converge_increment: int | None = None
    #: XBZRLE's cache on the source, bytes (None: no XBZRLE).
    xbzrle_cache_bytes: int | None = None
    #: With ``NON_SHARED_DISK``: the targets (vda…) of the disks to copy; empty: every disk.
    copy_disks: tuple[str, ...] = ()
    extra: Mapping[str, str | int] = field(default_factory=dict)


#: Corral's auto-converge tuning: start throttling a fast-dirtying guest early and hard
#: enough that the stream catches up in a few passes (QEMU's own defaults are 20 and 10).
AUTO_CONVERGE_INITIAL = 30
AUTO_CONVERGE_INCREMENT = 20
#: XBZRLE's cache: enough for a busy guest's hot pages; the service caps it at a quarter of
#: the guest's memory.
XBZRLE_CACHE_BYTES = 64 * 2**20


def host_in_uri(address: str) -> str:
    """``address`` as it goes in a URI (IPv6 in brackets)."""
    try:
        return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    except ValueError:
        return address


class MigrationTransport(abc.ABC):
    """One way to carry a live migration from a source host to a destination host.

    Class attributes describe it; :meth:`check` says why two hosts or a request cannot use it;
    :meth:`route` says how the source reaches the destination. :meth:`plan` (rarely
    overridden) adds the request's generic options to the route.
    """

    #: Its name in requests (``corral vm migrate NAME --to HOST --transport NAME``).
    name: ClassVar[str]
    #: One line for people (``corral vm migrate --help``, the UI, the docs).
    description: ClassVar[str] = ""
    #: True when guest memory is encrypted on the wire: Corral refuses transports that are
    #: not unless an admin allowed it for the cluster (``allow_insecure_migration``).
    encrypted: ClassVar[bool]
    #: Connections (multifd) when the request leaves it to the transport; None: one stream.
    default_parallel_connections: ClassVar[int | None] = None

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        """``options``: this transport's table of Corral's ``migration_transports`` setting
        (e.g. ``[migration_transports.ssh] command = "…"``); empty when not configured."""
        self.options: Mapping[str, str] = dict(options or {})

    def check(
        self,
        source: MigrationEndpoint,
        destination: MigrationEndpoint,
        request: MigrationRequest,
    ) -> list[str]:
        """Sentences saying why this migration cannot use this transport (empty: it can)."""
        return []

    async def prerequisites(
        self, source: MigrationEndpoint, destination: MigrationEndpoint, run: RunOnSource
    ) -> list[str]:
        """Sentences saying why the hosts themselves are not ready for this transport between
        ``source`` and ``destination`` (empty: they are), found by running commands on the
        source with ``run``. Called by the pre-flight checks when :meth:`check` found nothing,
        and by ``GET /migration/transports``; each sentence should quote the real cause and say
        what to do. The default checks nothing."""
        return []

    @abc.abstractmethod
    def route(self, source: MigrationEndpoint, destination: MigrationEndpoint) -> Route:
        """How ``source`` reaches ``destination``. Called only when :meth:`check` found
        nothing."""

    def plan(
        self,
        source: MigrationEndpoint,
        destination: MigrationEndpoint,
        request: MigrationRequest,
    ) -> MigrationPlan:
        """The route plus what every migration gets: live, peer-to-peer, persistent on the
        destination and undefined on the source, with the request's tuning."""
        route = self.route(source, destination)
        flags = set(route.flags) | {
            MigrationFlag.LIVE,
            MigrationFlag.PEER2PEER,
            MigrationFlag.PERSIST_DEST,
            MigrationFlag.UNDEFINE_SOURCE,
            MigrationFlag.ABORT_ON_ERROR,
        }
        if request.auto_converge:
            flags.add(MigrationFlag.AUTO_CONVERGE)
        if request.postcopy:
            flags.add(MigrationFlag.POSTCOPY)
        parallel = self.parallel_connections(request)
        if parallel:
            flags.add(MigrationFlag.PARALLEL)
        if request.storage is StorageMode.COPY:
            flags.add(MigrationFlag.NON_SHARED_DISK)
        # QEMU cannot combine XBZRLE with multifd.
        xbzrle = request.xbzrle and not parallel
        if xbzrle:
            flags.add(MigrationFlag.COMPRESSED)
        return MigrationPlan(
            transport=self.name,
            destination_uri=route.destination_uri,
            flags=frozenset(flags),
            stream_uri=route.stream_uri,
            tls_destination=route.tls_destination,
            max_downtime_ms=request.max_downtime_ms,
            bandwidth_mib_s=request.bandwidth_mib_s,
            parallel_connections=parallel,
            auto_converge_initial=AUTO_CONVERGE_INITIAL if request.auto_converge else None,
            auto_converge_increment=AUTO_CONVERGE_INCREMENT if request.auto_converge else None,
            xbzrle_cache_bytes=XBZRLE_CACHE_BYTES if xbzrle else None,
        )

    def parallel_connections(self, request: MigrationRequest) -> int | None:
        """How many multifd connections (None: one stream). The request decides (1 means
        one); else the transport's default, except with post-copy or XBZRLE, which QEMU does
        not combine with multifd."""
        wanted = request.parallel_connections
        if wanted is None:
            if request.postcopy or request.xbzrle:
                return None
            wanted = self.default_parallel_connections
        return wanted if wanted and wanted > 1 else None


def need_enrolled(endpoint: MigrationEndpoint, role: str) -> list[str]:
    """The checks of transports that use Corral's certificates on both hosts."""
    problems = []
    if endpoint.address is None:
        problems.append(
            f"{role} host {endpoint.name} was added by URI, not enrolled: Corral issued it no "
            f"migration certificates (enroll it with `corral host enroll {endpoint.name} "
            "ADDRESS --ssh root@ADDRESS`)"
        )
    return problems


def need_peer_client(endpoint: MigrationEndpoint) -> list[str]:
    if endpoint.address is None or endpoint.peer_client_cert:
        return []
    return [
        f"source host {endpoint.name} has no libvirt client certificate for peer-to-peer "
        f"migration (it was enrolled before Corral issued them): run `corral host "
        f"rotate-certs {endpoint.name}`"
    ]
