"""``LibvirtHost``: the typed, async face of one libvirt host.

It owns the connection and its events, and drives domains (define, power, snapshots). Other
jobs are adapters on the same connection, as attributes: ``host.storage`` (Corral's pool and
its volumes), ``host.consoles`` (screens, serial consoles and logs), ``host.migration`` (live
migration and its pre-flight reads), ``host.changes`` (edits of defined domains),
``host.guests`` (what the host can run), ``host.networks`` (cluster networks, NICs) and
``host.disk_moves`` (moving a disk to another volume).

Each public method is a thin async wrapper: the blocking libvirt work is a small function run by
:meth:`ManagedConnection.run` in a worker thread, under a timeout, with errors mapped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import libvirt

from corral.errors import Conflict, InsufficientResources
from corral.model.host import HostCapabilities
from corral.model.vm import Accelerator, SnapshotInfo, VmSpec
from corral.virt import _clone, _hostfiles, _media, _network, _records, _snapshots, _stats, _vnc
from corral.virt._connection import ManagedConnection
from corral.virt._description import set_description
from corral.virt._lookup import lookup as _lookup
from corral.virt.backups import HostBackups
from corral.virt.changes import DomainChanges
from corral.virt.consoles import HostConsoles
from corral.virt.disk_moves import DiskMoves
from corral.virt.domain_pools import DomainPools
from corral.virt.domain_xml import HostDefaults, build_domain
from corral.virt.domain_xml.archdefaults import nested_feature
from corral.virt.domain_xml.graphics import Graphics
from corral.virt.guest_caps import GuestCapabilities
from corral.virt.iscsi_pools import IscsiPools
from corral.virt.migration import HostMigration
from corral.virt.networks import HostNetworks
from corral.virt.storage import PoolStorage
from corral.virt.types import (
    EVENT_CONNECTED,
    EVENT_DISCONNECTED,
    EVENT_LIFECYCLE,
    DomainEvent,
    DomainRecord,
    NodeCounters,
    VolumeRef,
)

log = logging.getLogger(__name__)
_UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
)


_PERSISTENT_XML = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


_STALE_UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_KEEP_NVRAM
)


def _undefine(dom: libvirt.virDomain) -> None:
    """Undefine with snapshot metadata, managed save, NVRAM and checkpoints; drivers that know
    fewer flags (the test driver) get the ones every driver knows."""
    try:
        dom.undefineFlags(_UNDEFINE_FLAGS)
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
            raise
        dom.undefineFlags(
            libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
            | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        )


class LibvirtHost:
    """One connection to one libvirt host: keep-alive, reconnect with back-off, events via
    libvirtaio. Subscribers are called in the asyncio loop thread."""

    def __init__(
        self,
        name: str,
        uri: str,
        *,
        forced_accelerator: Accelerator | None = None,
        pool_name: str = "corral",
        pool_dir: str = "/var/lib/libvirt/corral/images",
        call_timeout: float = 60.0,
    ) -> None:
        self.name = name
        self.uri = uri
        self.forced_accelerator = forced_accelerator
        self.pool_name = pool_name
        self.pool_dir = pool_dir
        self.call_timeout = call_timeout
        self._subscribers: list[Callable[[DomainEvent], None]] = []
        self._started_at: dict[str, float] = {}
        self._capabilities: HostCapabilities | None = None
        self._conn = ManagedConnection(name, uri, call_timeout, self._emit)
        #: Changes to defined domains: resizing, hot-plug, rewrites of the definition.
        self.changes = DomainChanges(self._conn)
        #: What the host can run (guest architectures, domain capabilities), read once per
        #: connection.
        self.guests = GuestCapabilities(self._conn, name)
        #: Corral's storage pool on the host and its volumes.
        self.storage = PoolStorage(self._conn, pool_name, pool_dir)
        #: The iscsi-direct pools of iscsi storage domains on the host.
        self.iscsi_pools = IscsiPools(self._conn)
        #: The directory pools of storage domains (shared-dir) on the host.
        self.domain_pools = DomainPools(self._conn)
        #: Screens (screenshots, VNC), serial consoles and serial logs of domains.
        self.consoles = HostConsoles(self._conn, name, uri, self.storage)
        #: Live migration from (and pre-flight reads of) this host.
        self.migration = HostMigration(self._conn, name)
        #: Cluster networks' libvirt networks and the host's NICs.
        self.networks = HostNetworks(self._conn, name)
        #: Moving a domain's disk to another volume (block copy, volume clones).
        self.disk_moves = DiskMoves(self._conn, name)
        self.backups = HostBackups(self._conn, self.storage)

    # -- connection and events ---------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._conn.state.value == "connected"

    async def connect(self) -> None:
        await self._conn.connect()
        await self.capabilities()

    async def close(self) -> None:
        self.storage.forget()  # or its pool handle keeps the connection alive
        self.domain_pools.forget_handles()
        await self._conn.close()

    @property
    def passes_fds(self) -> bool:
        """libvirt is reached over a local UNIX socket: sockets (VNC) can be handed over."""
        return _vnc.passes_fds(self.uri)

    @property
    def libvirt_id(self) -> str | None:
        """Which libvirt daemon this is: ``uuid:`` + the host UUID of its capabilities, else
        ``uri:`` + the URI (libvirt's test driver has no host UUID). None before the first
        connection."""
        caps = self._capabilities
        if caps is None:
            return None
        return f"uuid:{caps.host_uuid}" if caps.host_uuid else f"uri:{self.uri}"

    def subscribe(self, callback: Callable[[DomainEvent], None]) -> None:
        self._subscribers.append(callback)

    def _emit(self, event: DomainEvent) -> None:
        if event.kind == EVENT_DISCONNECTED:
            self.storage.forget()  # its pool handle belongs to the dead connection
            self.domain_pools.forget_handles()
        if event.kind in (EVENT_DISCONNECTED, EVENT_CONNECTED):
            # The daemon may have restarted with other emulators: read them again.
            self.guests.forget()
        if event.kind == EVENT_LIFECYCLE and event.uuid is not None:
            if event.detail == "started":
                self._started_at[event.uuid] = time.monotonic()
            elif event.detail in ("stopped", "crashed", "undefined"):
                self._started_at.pop(event.uuid, None)
        for callback in list(self._subscribers):
            try:
                callback(event)
            # Top of an event dispatch: one failing subscriber must not starve the others.
            except Exception:
                log.exception("event subscriber %r failed on %s", callback, event)

    async def _dom(self, what: str, uuid: str, fn: Callable[[libvirt.virDomain], object]) -> None:
        await self._conn.run(what, lambda c: fn(_lookup(c, uuid)))

    # -- host --------------------------------------------------------------------------------
    async def capabilities(self) -> HostCapabilities:
        caps = await self._conn.run(
            f"read capabilities of host {self.name}", _records.host_capabilities
        )
        catalog = await self.guests.catalog()
        caps = caps.model_copy(update={"architectures": sorted(catalog.guests)})
        self._capabilities = caps
        return caps

    async def node_counters(self) -> NodeCounters:
        """CPU time and memory counters of the node and its running domains (sampling)."""
        return await self._conn.run(
            f"read the statistics of host {self.name}", _stats.node_counters
        )

    async def suspend_node(self, target: str, duration_s: int) -> None:
        """Suspend the whole host (``virNodeSuspendForDuration``): its RTC wakes it after
        ``duration_s`` (0: only something else can, e.g. Wake-on-LAN)."""
        await self._conn.run(
            f"suspend host {self.name} to {target}",
            lambda c: _stats.suspend_node(c, target, duration_s),
        )

    async def find_file(self, path: str) -> VolumeRef | None:
        """The regular file ``path`` as this host sees it (a remote host's own filesystem),
        through libvirt's storage pools; None when there is no such file."""
        return await self._conn.run(
            f"look up file {path} on host {self.name}", lambda c: _hostfiles.find_file(c, path)
        )

    @property
    def known_capabilities(self) -> HostCapabilities | None:
        """What the host reported when last reached (also while it is down)."""
        return self._capabilities

    def accelerator_for(
        self, requested: Accelerator | None, arch: str | None = None
    ) -> Accelerator:
        """Per-VM request > host's forced accelerator > KVM if offered (for ``arch``: the
        host's own architecture by default) > TCG."""
        offered = self._capabilities.accelerators if self._capabilities else [Accelerator.TCG]
        native = self._capabilities.arch if self._capabilities else None
        catalog = self.guests.known
        guest = catalog.guests.get(arch) if catalog and arch else None
        if arch is not None and arch != native and guest is not None:
            offered = guest.accelerators
        choice = requested or self.forced_accelerator
        if choice is Accelerator.KVM and Accelerator.KVM not in offered:
            what = f"{arch} guests" if arch and arch != native else "KVM guests"
            raise InsufficientResources(
                f"host {self.name} cannot run {what} under KVM"
                + (" (no usable /dev/kvm)" if what == "KVM guests" else "")
                + ": ask for accelerator 'tcg' or pick another host"
            )
        if choice is not None:
            return choice
        return Accelerator.KVM if Accelerator.KVM in offered else Accelerator.TCG

    # -- domains -----------------------------------------------------------------------------
    async def list_domains(
        self, known: Mapping[str, DomainRecord] | None = None
    ) -> list[DomainRecord]:
        """Every domain's record. With ``known`` (records listed before, by UUID), a domain
        whose name, state, vCPUs and memory are unchanged keeps its known record (counters
        refreshed) instead of having its XML read and parsed: at 10,000 domains that parse is
        what a periodic listing of every host costs."""

        def job(conn: libvirt.virConnect) -> list[DomainRecord]:
            records = []
            for dom in conn.listAllDomains(0):
                try:
                    old = known.get(dom.UUIDString()) if known else None
                    kept = _records.still(dom, old, self._started_at) if old else None
                    records.append(kept or _records.domain_record(dom, self._started_at))
                except libvirt.libvirtError as err:
                    if err.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                        raise  # a domain that vanished meanwhile is simply not listed
            return sorted(records, key=lambda r: r.name)

        return await self._conn.run(f"list domains on host {self.name}", job)

    async def get_domain(self, uuid_or_name: str) -> DomainRecord:
        return await self._conn.run(
            f"look up domain {uuid_or_name} on host {self.name}",
            lambda c: _records.domain_record(_lookup(c, uuid_or_name), self._started_at),
        )

    def host_defaults(self, spec: VmSpec, nat_network: str | None) -> HostDefaults:
        native = self._capabilities.arch if self._capabilities else "x86_64"
        arch = str(spec.arch) if spec.arch else native
        accelerator = self.accelerator_for(spec.accelerator, arch)
        catalog = self.guests.known
        vendor = catalog.host_cpu.vendor if catalog else ""
        return HostDefaults(
            accelerator=accelerator,
            arch=arch,
            machine=spec.machine,
            nested_feature=nested_feature(arch, accelerator, vendor),
            nat_network=nat_network,
            serial_log_dir=self.pool_dir,
            # Local hosts: a UNIX socket. Others: qemu.conf's vnc_listen, which enrollment sets
            # to the host's address with TLS and client certificates.
            vnc_listen=(
                Graphics.LISTEN_SOCKET if _vnc.passes_fds(self.uri) else Graphics.LISTEN_ADDRESS
            ),
        )

    async def domain_xml(
        self, spec: VmSpec, disks: list[VolumeRef], *, uuid: str | None = None
    ) -> str:
        """The definition ``spec`` makes on this host, not defined (a template's)."""
        nat = None
        if any(nic.network == "nat" for nic in spec.nics):
            nat = await self.ensure_nat_network()
        return build_domain(spec, disks, self.host_defaults(spec, nat), uuid=uuid).to_xml()

    async def define_domain(
        self, spec: VmSpec, disks: list[VolumeRef], *, uuid: str | None = None
    ) -> DomainRecord:
        xml = await self.domain_xml(spec, disks, uuid=uuid)
        return await self._conn.run(
            f"define VM {spec.name} on host {self.name}",
            lambda c: _records.domain_record(c.defineXML(xml), self._started_at),
        )

    async def clone_domain(
        self, uuid: str, name: str, disk_paths: dict[str, str], description: str | None
    ) -> DomainRecord:
        """Define a copy of a domain under a new name, with its disks at ``disk_paths``
        (target dev -> file), a new UUID and new MAC addresses."""

        def job(conn: libvirt.virConnect) -> DomainRecord:
            source = _lookup(conn, uuid).XMLDesc(_PERSISTENT_XML)
            xml = _clone.clone_xml(source, name, disk_paths, description, self.pool_dir)
            return _records.domain_record(conn.defineXML(xml), self._started_at)

        return await self._conn.run(f"define clone {name} of domain {uuid}", job)

    async def define_copy(
        self,
        source_xml: str,
        name: str,
        disk_paths: dict[str, str],
        description: str | None,
        seed: tuple[list[str], str] | None = None,
    ) -> DomainRecord:
        """Define a domain from another's saved definition (a template's) under a new name,
        like ``clone_domain``: disks at ``disk_paths``, a new UUID and new MAC addresses
        (``seed``: these MACs, and this cloud-init seed ISO as a CD-ROM)."""

        def job(conn: libvirt.virConnect) -> DomainRecord:
            xml = _clone.clone_xml(source_xml, name, disk_paths, description, self.pool_dir)
            if seed is not None:
                xml = _clone.with_seed(xml, *seed)
            return _records.domain_record(conn.defineXML(xml), self._started_at)

        return await self._conn.run(f"define {name} from a saved definition", job)

    async def set_disk_sources(self, uuid: str, disk_paths: dict[str, str]) -> None:
        """Point a (shut off) domain's disks at other files (target dev -> file)."""

        def job(conn: libvirt.virConnect) -> None:
            source = _lookup(conn, uuid).XMLDesc(_PERSISTENT_XML)
            conn.defineXML(_clone.with_disk_sources(source, disk_paths))

        await self._conn.run(f"change the disks of domain {uuid}", job)

    async def saved_definition(self, uuid: str) -> str:
        """The domain's persistent definition (secrets included: it is stored in Corral's
        database, never shown) with host autostart switched off: a VM that Corral restarts
        elsewhere must not also start when its old host boots again."""

        def job(conn: libvirt.virConnect) -> str:
            dom = _lookup(conn, uuid)
            if dom.autostart():
                dom.setAutostart(0)
            return str(dom.XMLDesc(_PERSISTENT_XML | libvirt.VIR_DOMAIN_XML_MIGRATABLE))

        return await self._conn.run(f"read the definition of domain {uuid}", job)

    async def define_saved(self, xml: str) -> DomainRecord:
        """Define a domain from a definition saved on another host (same UUID)."""
        return await self._conn.run(
            f"define a saved domain on host {self.name}",
            lambda c: _records.domain_record(c.defineXML(xml), self._started_at),
        )

    async def forget_stale(self, uuid: str) -> None:
        """Undefine a stale definition (a VM restarted elsewhere): its disks, and its NVRAM,
        which the running copy may share, stay."""

        def job(dom: libvirt.virDomain) -> None:
            try:
                dom.undefineFlags(_STALE_UNDEFINE_FLAGS)
            except libvirt.libvirtError as err:
                if err.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
                    raise
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)

        await self._dom(f"forget stale domain {uuid}", uuid, job)

    async def undefine_domain(self, uuid: str) -> None:
        await self._dom(f"undefine domain {uuid}", uuid, _undefine)

    async def start(self, uuid: str) -> None:
        await self._dom(f"start domain {uuid}", uuid, lambda d: d.create())

    async def shutdown(self, uuid: str) -> None:
        await self._dom(f"shut down domain {uuid}", uuid, lambda d: d.shutdown())

    async def destroy(self, uuid: str) -> None:
        await self._dom(f"force off domain {uuid}", uuid, lambda d: d.destroy())

    async def reboot(self, uuid: str) -> None:
        await self._dom(f"reboot domain {uuid}", uuid, lambda d: d.reboot(0))

    async def suspend(self, uuid: str) -> None:
        await self._dom(f"pause domain {uuid}", uuid, lambda d: d.suspend())

    async def resume(self, uuid: str) -> None:
        await self._dom(f"resume domain {uuid}", uuid, lambda d: d.resume())

    async def change_media(self, uuid: str, path: str | None) -> None:
        """Put ``path`` (None: nothing) in the domain's first CD-ROM drive. A running domain
        changes at once and for later boots; a shut-off one is redefined, with a new drive
        when it has none. A running domain without a drive is a Conflict (no CD-ROM hot-plug).
        The guest's tray lock is overridden, like ``virsh change-media --force``."""

        def job(conn: libvirt.virConnect) -> None:
            dom = _lookup(conn, uuid)
            if not dom.isActive():
                conn.defineXML(_media.with_media(dom.XMLDesc(_PERSISTENT_XML), path))
                return
            device = _media.cdrom_device_xml(dom.XMLDesc(0), path)
            if device is None:
                raise Conflict(
                    f"VM {dom.name()!r} is running and has no CD-ROM drive, which cannot be "
                    "added while it runs: shut it down, then insert the image (Corral adds a "
                    "drive), or create VMs with a CD-ROM drive (cdrom_drive)"
                )
            flags = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_DEVICE_MODIFY_FORCE
            if dom.isPersistent():
                flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
            dom.updateDeviceFlags(device, flags)

        what = f"insert {path} into" if path else "eject the CD-ROM of"
        await self._conn.run(f"{what} domain {uuid}", job)

    async def disk_users(self) -> dict[str, set[str]]:
        """Path -> names of the domains whose disks or CD-ROM drives hold it (live or next
        boot)."""
        return await self._conn.run(f"list the disks of the domains on host {self.name}",
                                    _records.disk_users)  # fmt: skip

    async def set_description(self, uuid: str, description: str) -> None:
        await self._dom(
            f"set the description of domain {uuid}", uuid, lambda d: set_description(d, description)
        )

    # -- snapshots ---------------------------------------------------------------------------
    async def list_snapshots(self, uuid: str) -> list[SnapshotInfo]:
        return await self._conn.run(
            f"list snapshots of domain {uuid}",
            lambda c: _snapshots.list_snapshots(_lookup(c, uuid)),
        )

    async def create_snapshot(self, uuid: str, name: str, description: str) -> SnapshotInfo:
        return await self._conn.run(
            f"create snapshot {name} of domain {uuid}",
            lambda c: _snapshots.create(_lookup(c, uuid), name, description),
        )

    async def revert_snapshot(self, uuid: str, name: str) -> None:
        await self._dom(f"revert domain {uuid} to snapshot {name}", uuid,
                        lambda d: _snapshots.revert(d, name))  # fmt: skip

    async def delete_snapshot(self, uuid: str, name: str) -> None:
        await self._dom(f"delete snapshot {name} of domain {uuid}", uuid,
                        lambda d: _snapshots.delete(d, name))  # fmt: skip

    # -- networking --------------------------------------------------------------------------
    async def ensure_nat_network(self) -> str | None:
        return await self._conn.run(
            f"prepare the NAT network on host {self.name}", _network.ensure_nat_network
        )
