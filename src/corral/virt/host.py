"""``LibvirtHost``: the typed, async face of one libvirt host.

Each public method is a thin async wrapper: the blocking libvirt work is a small function run by
:meth:`ManagedConnection.run` in a worker thread, under a timeout, with errors mapped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

import libvirt

from corral.errors import Conflict, InsufficientResources
from corral.model.host import HostCapabilities
from corral.model.vm import Accelerator, SnapshotInfo, VmSpec
from corral.virt import (
    _clone,
    _media,
    _network,
    _qmp,
    _records,
    _snapshots,
    _stats,
    _storage,
    _transfer,
    _vnc,
)
from corral.virt._connection import ManagedConnection
from corral.virt._description import set_description
from corral.virt._lookup import lookup as _lookup
from corral.virt._upload import VolumeWriter
from corral.virt.changes import DomainChanges
from corral.virt.console import SerialConsole
from corral.virt.domain_xml import HostDefaults, build_domain
from corral.virt.domain_xml.archdefaults import nested_feature
from corral.virt.domain_xml.graphics import Graphics
from corral.virt.guest_caps import GuestCapabilities
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
        self._pool_handle: tuple[libvirt.virConnect, libvirt.virStoragePool] | None = None
        self._conn = ManagedConnection(name, uri, call_timeout, self._emit)
        #: Changes to defined domains: resizing, hot-plug, rewrites of the definition.
        self.changes = DomainChanges(self._conn)
        #: What the host can run (guest architectures, domain capabilities), read once per
        #: connection.
        self.guests = GuestCapabilities(self._conn, name)

    # -- connection and events ---------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._conn.state.value == "connected"

    async def connect(self) -> None:
        await self._conn.connect()
        await self.capabilities()

    async def close(self) -> None:
        # The cached pool handle holds a reference on its connection: drop it, or the
        # connection outlives close().
        self._pool_handle = None
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
            self._pool_handle = None  # belongs to the dead connection
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
    async def list_domains(self) -> list[DomainRecord]:
        def job(conn: libvirt.virConnect) -> list[DomainRecord]:
            records = []
            for dom in conn.listAllDomains(0):
                try:
                    records.append(_records.domain_record(dom, self._started_at))
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

    async def define_domain(
        self, spec: VmSpec, disks: list[VolumeRef], *, uuid: str | None = None
    ) -> DomainRecord:
        nat = None
        if any(nic.network == "nat" for nic in spec.nics):
            nat = await self.ensure_nat_network()
        xml = build_domain(spec, disks, self.host_defaults(spec, nat), uuid=uuid).to_xml()
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

    async def set_disk_sources(self, uuid: str, disk_paths: dict[str, str]) -> None:
        """Point a (shut off) domain's disks at other files (target dev -> file)."""

        def job(conn: libvirt.virConnect) -> None:
            source = _lookup(conn, uuid).XMLDesc(_PERSISTENT_XML)
            conn.defineXML(_clone.with_disk_sources(source, disk_paths))

        await self._conn.run(f"change the disks of domain {uuid}", job)

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

    # -- console, screen, serial log ---------------------------------------------------------
    async def screenshot_png(self, uuid: str) -> bytes:
        return await self._conn.run(
            f"take a screenshot of domain {uuid}",
            lambda c: _transfer.screenshot_png(c, _lookup(c, uuid)),
        )

    async def read_serial_log(self, name: str, tail_bytes: int | None = None) -> bytes:
        log_name = f"{name}{_storage.SERIAL_LOG_SUFFIX}"
        return await self._conn.run(
            f"read the serial log of VM {name}",
            lambda c: _transfer.download_tail(c, self._pool(c), log_name, tail_bytes),
        )

    async def delete_serial_log(self, name: str) -> None:
        """Remove VM ``name``'s serial log (it is appended to, so a later VM of the same name
        would otherwise inherit it). No error if there is none."""
        log_name = f"{name}{_storage.SERIAL_LOG_SUFFIX}"

        def job(conn: libvirt.virConnect) -> None:
            vol = _storage.find(self._pool(conn), log_name)
            if vol is not None:
                vol.delete(0)

        await self._conn.run(f"delete the serial log of VM {name}", job)

    async def open_serial_console(self, uuid: str) -> SerialConsole:
        conn = self._conn.require()
        stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        what = f"serial console of domain {uuid}"
        await self._conn.run(
            f"open the {what}",
            lambda c: _lookup(c, uuid).openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE),
        )
        return SerialConsole(stream, what)

    async def open_vnc(self, uuid: str) -> socket.socket:
        """A connected socket to the domain's VNC server, without VNC authentication (the
        caller owns it). Only for hosts reached over a local UNIX socket."""
        _vnc.require_local(self.name, self.uri)
        return await self._conn.run(
            f"open the screen (VNC) of domain {uuid}",
            lambda c: _vnc.open_graphics_socket(_lookup(c, uuid)),
        )

    async def vnc_endpoint(self, uuid: str) -> tuple[str, int] | None:
        """(address, port) of a running domain's VNC server on the network (remote hosts; on
        enrolled hosts it speaks VeNCrypt X509None: connect with
        ``ClusterPki.console_client_context()``); None for a UNIX socket or no VNC."""
        return await self._conn.run(
            f"read the VNC address of domain {uuid}",
            lambda c: _vnc.graphics_endpoint(_lookup(c, uuid)),
        )

    async def reload_vnc_certificates(self, uuid: str) -> None:
        """Make a running domain's VNC server re-read its TLS certificates (QMP display-reload)."""
        await self._dom(
            f"reload the VNC certificates of domain {uuid}", uuid, _qmp.reload_vnc_certificates
        )

    # -- storage -----------------------------------------------------------------------------
    def _pool(self, conn: libvirt.virConnect) -> libvirt.virStoragePool:
        """Corral's pool on this connection. Ensuring it (look up, define, start, autostart)
        costs several RPCs; serial logs are polled many times a second, so the handle is kept
        per connection and re-ensured only when the pool stopped being active."""
        cached = self._pool_handle
        if cached is not None and cached[0] is conn:
            with contextlib.suppress(libvirt.libvirtError):
                if cached[1].isActive():
                    return cached[1]
        pool = _storage.ensure_pool(conn, self.pool_name, self.pool_dir)
        self._pool_handle = (conn, pool)
        return pool

    async def ensure_pool(self) -> None:
        await self._conn.run(f"prepare storage pool {self.pool_name}", self._pool)

    async def list_volumes(self) -> list[VolumeRef]:
        return await self._conn.run(
            f"list volumes of pool {self.pool_name}",
            lambda c: _storage.list_volumes(self._pool(c)),
        )

    async def create_blank_volume(self, name: str, size_bytes: int) -> VolumeRef:
        return await self._conn.run(
            f"create volume {name}",
            lambda c: _storage.create_blank(self._pool(c), name, size_bytes),
        )

    async def create_linked_clone(self, name: str, base: str) -> VolumeRef:
        return await self._conn.run(
            f"create volume {name} as a linked clone of {base}",
            lambda c: _storage.create_linked_clone(c, self._pool(c), name, base),
        )

    async def import_volume(
        self,
        name: str,
        source: Path,
        *,
        progress: Callable[[int, int], None],
        cancelled: Callable[[], bool],
    ) -> VolumeRef:
        """Upload ``source`` (a file where Corral runs) into a new volume; no overall timeout,
        progress is reported in the loop thread."""
        loop = asyncio.get_running_loop()

        def report(done: int, total: int) -> None:
            loop.call_soon_threadsafe(progress, done, total)

        return await self._conn.run(
            f"import {source} as volume {name}",
            lambda c: _transfer.upload(c, self._pool(c), name, source, report, cancelled),
            bounded=False,
        )

    async def pool_free_bytes(self) -> int:
        """Free space in Corral's pool (as of a refresh now)."""

        def job(conn: libvirt.virConnect) -> int:
            pool = self._pool(conn)
            _storage.refresh(pool)
            return int(pool.info()[3])

        return await self._conn.run(f"read the free space of pool {self.pool_name}", job)

    async def open_upload(
        self, name: str, fmt: str, capacity_bytes: int, total_bytes: int
    ) -> VolumeWriter:
        """Create volume ``name`` (``fmt``, ``capacity_bytes`` as a guest sees it) to be filled
        with exactly ``total_bytes`` through the returned writer."""
        job = await self._conn.run(
            f"create volume {name} for an upload",
            lambda c: _transfer.VolumeUpload.create(
                c, self._pool(c), name, fmt, capacity_bytes, total_bytes
            ),
        )
        return VolumeWriter(self._conn, job, name)

    async def resize_volume(self, name: str, size_bytes: int) -> None:
        await self._conn.run(
            f"resize volume {name}",
            lambda c: _storage.lookup(self._pool(c), name).resize(size_bytes, 0),
        )

    async def delete_volume(self, name: str) -> None:
        await self._conn.run(
            f"delete volume {name}", lambda c: _storage.lookup(self._pool(c), name).delete(0)
        )

    async def find_volume(self, name: str) -> VolumeRef | None:
        def job(conn: libvirt.virConnect) -> VolumeRef | None:
            vol = _storage.find(self._pool(conn), name)
            return None if vol is None else _storage.volume_ref(vol)

        return await self._conn.run(f"look up volume {name}", job)

    async def volume_exists(self, name: str) -> bool:
        return await self._conn.run(
            f"look up volume {name}", lambda c: _storage.exists(self._pool(c), name)
        )

    # -- networking --------------------------------------------------------------------------
    async def ensure_nat_network(self) -> str | None:
        return await self._conn.run(
            f"prepare the NAT network on host {self.name}", _network.ensure_nat_network
        )
