"""Pre-flight checks: everything that can be known before libvirt is asked to migrate.

:func:`refusals` is pure (facts in, refusals out: unit-tested case by case);
:class:`Preflight` gathers the facts from the inventory and the hosts. Each refusal carries
the error class the API answers with (404 unknown host, 422 same host or a malformed choice,
409 wrong state or not enough of something, 403 ``insecure`` without the cluster's consent).
"""

from __future__ import annotations

import posixpath
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace

from lxml import etree

from corral import store
from corral.errors import (
    Conflict,
    CorralError,
    InsufficientResources,
    InvalidRequest,
    NotFound,
)
from corral.model.host import HostCapabilities
from corral.model.migration import MigrationRequest, StorageMode
from corral.model.pki import CertPurpose
from corral.model.vm import Accelerator, VmState
from corral.services.hosts import HostService
from corral.services.migrations.readiness import TransportReadiness
from corral.services.storage import StorageDomains
from corral.services.vms.inventory import VmInventory
from corral.virt import DomainRecord, LibvirtHost
from corral.virt.migration import network_names
from corral.virt.transports import MigrationEndpoint, MigrationTransport

#: What QEMU needs beyond the guest's RAM (device memory, page tables, its own heap).
QEMU_OVERHEAD_MIB = 64
#: The NAT network Corral creates on demand (``network=nat``): made on the destination
#: before the check rather than refused.
CORRAL_NAT = "corral-nat"
_LIVE = (VmState.RUNNING, VmState.PAUSED, VmState.BLOCKED)


@dataclass(frozen=True)
class Refusal:
    error: type[CorralError]
    message: str


@dataclass(frozen=True)
class VmFacts:
    name: str
    uuid: str
    state: VmState
    memory_mib: int
    arch: str
    accelerator: Accelerator | None
    networks: tuple[str, ...] = ()
    #: (target, path, device) of every disk with a file behind it.
    disks: tuple[tuple[str, str, str], ...] = ()
    #: path -> storage domain (other than local) of the disks that are in one.
    disk_domains: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HostFacts:
    """A destination (or source) as the checks see it. ``caps`` None: not reachable."""

    name: str
    known: bool = True
    connected: bool = True
    maintenance: bool = False
    last_error: str | None = None
    caps: HostCapabilities | None = None
    cpu_problem: str | None = None
    networks: frozenset[str] = frozenset()
    visible_paths: frozenset[str] = frozenset()
    pool_dirs: frozenset[str] = frozenset()
    clashes: tuple[str, ...] = ()
    #: Cluster networks the host lacks (required ones, or ones the VM's NICs name), in words.
    lacking_networks: str | None = None
    transport_problems: tuple[str, ...] = field(default_factory=tuple)
    #: The storage domains the host reaches, and why it does not reach the others.
    reached_domains: frozenset[str] = frozenset()
    domain_reasons: Mapping[str, str] = field(default_factory=dict)


def _state(vm: VmFacts) -> list[Refusal]:
    if vm.state in _LIVE:
        return []
    if vm.state == VmState.SHUTOFF:
        why = f"VM {vm.name} is shut off: live migration moves a running VM; start it first"
    else:
        why = f"VM {vm.name} is {vm.state.value}: only a running or paused VM migrates live"
    return [Refusal(Conflict, why)]


def _destination(vm: VmFacts, source: str, dest: HostFacts) -> list[Refusal]:
    if not dest.known:
        return [Refusal(NotFound, f"unknown destination host {dest.name!r}")]
    if dest.name == source:
        return [
            Refusal(
                Conflict,
                f"VM {vm.name} already runs on host {source}: pick another destination",
            )
        ]
    if dest.maintenance:
        return [
            Refusal(
                Conflict,
                f"host {dest.name} is in maintenance and takes no VMs: pick another host, or "
                f"end it with `corral host maintenance {dest.name} off`",
            )
        ]
    if not dest.connected or dest.caps is None:
        reason = f" ({dest.last_error})" if dest.last_error else ""
        return [
            Refusal(
                Conflict,
                f"destination host {dest.name} is not reachable{reason}: Corral keeps "
                "retrying; pick another host or wait until it is connected",
            )
        ]
    return []


def _fit(vm: VmFacts, source_caps: HostCapabilities, dest: HostFacts) -> list[Refusal]:
    caps = dest.caps
    assert caps is not None
    out = []
    if caps.arch != vm.arch or caps.arch != source_caps.arch:
        out.append(
            Refusal(
                Conflict,
                f"host {dest.name} is {caps.arch}, VM {vm.name} is {vm.arch}: a VM migrates "
                "only between hosts of its architecture",
            )
        )
    if vm.accelerator is Accelerator.KVM and Accelerator.KVM not in caps.accelerators:
        out.append(
            Refusal(
                Conflict,
                f"VM {vm.name} runs on KVM and host {dest.name} has no usable KVM",
            )
        )
    need = vm.memory_mib + QEMU_OVERHEAD_MIB
    if caps.free_memory_mib < need:
        out.append(
            Refusal(
                InsufficientResources,
                f"host {dest.name} has {caps.free_memory_mib} MiB free, VM {vm.name} needs "
                f"{need} MiB ({vm.memory_mib} MiB and {QEMU_OVERHEAD_MIB} MiB for QEMU): pick "
                "another host or stop a VM there",
            )
        )
    if dest.cpu_problem:
        out.append(
            Refusal(
                Conflict,
                f"host {dest.name} cannot run VM {vm.name}'s CPU model ({dest.cpu_problem}): "
                "pick a host with a compatible CPU",
            )
        )
    return out


def storage_plan(
    vm: VmFacts, dest: HostFacts, asked: StorageMode
) -> tuple[StorageMode, tuple[tuple[str, str], ...]]:
    """The storage mode the migration runs with (shared: nothing copied, or copy) and the
    (target, path) of each disk it copies. A disk on a storage domain is never copied (its
    domain must be reached: ``_resources``); ``auto`` copies the other disks the destination
    does not see at their path, ``copy`` all of them, ``shared`` none."""
    copy = []
    for target, path, device in vm.disks:
        if device != "disk" or path in vm.disk_domains or asked is StorageMode.SHARED:
            continue
        if asked is StorageMode.AUTO and path in dest.visible_paths:
            continue
        copy.append((target, path))
    return (StorageMode.COPY if copy else StorageMode.SHARED), tuple(copy)


def proven_shared(vm: VmFacts, copied: tuple[tuple[str, str], ...]) -> bool:
    """Whether the VM has disks that stay where they are and all of them are on storage
    domains (reached by the destination: the pre-flight refuses it otherwise)."""
    moved = {path for _target, path in copied}
    staying = [p for _t, p, device in vm.disks if device == "disk" and p not in moved]
    return bool(staying) and all(p in vm.disk_domains for p in staying)


def _domain_refusal(vm: VmFacts, dest: HostFacts, target: str, path: str) -> list[Refusal]:
    domain = vm.disk_domains[path]
    if domain in dest.reached_domains:
        return []
    why = dest.domain_reasons.get(domain) or "never checked there"
    return [
        Refusal(
            Conflict,
            f"disk {target} of VM {vm.name} is on storage domain {domain}, which host "
            f"{dest.name} does not reach ({why}): pick a host that reaches it "
            f"(`corral storage-domain show {domain}`)",
        )
    ]


def _disk_refusals(
    vm: VmFacts, dest: HostFacts, copied: frozenset[str], target: str, path: str, device: str
) -> list[Refusal]:
    """Why one disk or CD-ROM of ``vm`` keeps it from ``dest`` (nothing: an empty list)."""
    if path in vm.disk_domains:
        return _domain_refusal(vm, dest, target, path)
    if device == "cdrom" or path not in copied:
        if path in dest.visible_paths:
            return []
        hint = (
            "put the ISO at the same path there or eject it"
            if device == "cdrom"
            else "ask for storage copy (the disk is copied over the migration's "
            "encrypted transport)"
        )
        why = (
            f"{device} {target} of VM {vm.name} ({path}) is not on host "
            f"{dest.name} (no shared storage at that path): {hint}"
        )
    elif posixpath.dirname(path).rstrip("/") not in dest.pool_dirs:
        why = (
            f"disk {target} of VM {vm.name} cannot be copied: host {dest.name} has no "
            f"storage pool at {posixpath.dirname(path)}"
        )
    elif path in dest.visible_paths:
        why = (
            f"host {dest.name} already has {path}: if it is a stale copy, delete it "
            f"(`corral volume delete {dest.name} {posixpath.basename(path)}`); if it "
            "is the same disk (shared storage), migrate with storage shared"
        )
    else:
        return []
    return [Refusal(Conflict, why)]


def _resources(vm: VmFacts, dest: HostFacts, copied: frozenset[str]) -> list[Refusal]:
    out = []
    if dest.lacking_networks is not None:
        out.append(
            Refusal(
                Conflict,
                f"host {dest.name} lacks {dest.lacking_networks} (VM {vm.name} needs it): "
                "see `corral network show` for why it is not applied there",
            )
        )
    missing = sorted(set(vm.networks) - dest.networks)
    if missing:
        out.append(
            Refusal(
                Conflict,
                f"host {dest.name} lacks the network(s) {', '.join(missing)} VM {vm.name} is "
                "attached to: define them there first",
            )
        )
    for target, path, device in vm.disks:
        out += _disk_refusals(vm, dest, copied, target, path, device)
    if dest.clashes:
        out.append(
            Refusal(
                Conflict,
                f"host {dest.name} already has a domain that clashes with VM {vm.name}: "
                f"{', '.join(dest.clashes)}; remove it there first",
            )
        )
    return out


def refusals(
    vm: VmFacts,
    source: str,
    source_caps: HostCapabilities,
    dest: HostFacts,
    request: MigrationRequest,
) -> list[Refusal]:
    """Why this migration cannot start, most fundamental first (empty: it can)."""
    early = _state(vm) + _destination(vm, source, dest)
    if early:
        return early
    out = [Refusal(Conflict, problem) for problem in dest.transport_problems]
    out += _fit(vm, source_caps, dest)
    _mode, copy = storage_plan(vm, dest, request.storage)
    return out + _resources(vm, dest, frozenset(path for _target, path in copy))


def raise_refusals(found: list[Refusal], vm: str, dest: str) -> None:
    """Raise the first refusal's error with every refusal's sentence."""
    if not found:
        return
    message = "; ".join(r.message for r in found)
    if len(found) > 1 or found[0].error not in (NotFound, InvalidRequest):
        message = f"cannot migrate VM {vm} to {dest}: {message}"
    raise found[0].error(message)


def vm_facts(record: DomainRecord, xml: str, source_arch: str) -> VmFacts:
    disks = tuple((d.target, d.path, d.device) for d in record.disks if d.path)
    return VmFacts(
        name=record.name,
        uuid=record.uuid,
        state=record.state,
        memory_mib=record.memory_mib,
        arch=_arch(xml) or source_arch,
        accelerator=record.accelerator,
        networks=tuple(network_names(xml)),
        disks=disks,
    )


def _arch(xml: str) -> str | None:
    node = etree.fromstring(xml.encode()).find("os/type")
    return node.get("arch") if node is not None else None


@dataclass(frozen=True)
class Checked:
    """What passed the checks: the parties and the transport's endpoints."""

    vm: VmFacts
    source: LibvirtHost
    destination: LibvirtHost
    source_endpoint: MigrationEndpoint
    destination_endpoint: MigrationEndpoint
    #: The storage mode it runs with (never auto) and the (target, path) of each disk copied.
    storage: StorageMode = StorageMode.SHARED
    copied: tuple[tuple[str, str], ...] = ()
    #: Every disk not copied is on a storage domain the destination reaches (Corral proved
    #: it shared; libvirt cannot tell a shared directory on ext4 from a local one).
    proven_shared: bool = False


class Preflight:
    def __init__(
        self,
        inventory: VmInventory,
        hosts: HostService,
        readiness: TransportReadiness | None = None,
    ) -> None:
        self._inventory = inventory
        self._hosts = hosts
        #: Checks the transport's prerequisites on the hosts (None: not checked).
        self._readiness = readiness
        #: Hosts lacking cluster networks a VM needs, in words (None: not checked).
        self.network_gaps: Callable[[set[str]], Awaitable[dict[str, str]]] | None = None
        #: The storage domains (None: every disk is taken for a local one).
        self.storage: StorageDomains | None = None

    async def endpoint(self, name: str) -> MigrationEndpoint:
        row = await self._inventory.db(lambda s: store.get_host(s, name))
        certs = self._hosts.pki.host_certs(name) if self._hosts.pki is not None else []
        return MigrationEndpoint(
            name=name,
            address=row.address,
            libvirt_uri=row.uri,
            peer_client_cert=any(c.purpose is CertPurpose.LIBVIRT_PEER_CLIENT for c in certs),
            ssh_destination=row.ssh_destination,
            ssh_port=row.ssh_port,
        )

    async def check(
        self, name: str, request: MigrationRequest, transport: MigrationTransport
    ) -> Checked:
        """Gather the facts and raise the refusals; what passed otherwise."""
        _row, source, record = await self._inventory.record(name)
        source_caps = await source.capabilities()
        xml = await source.migration.migratable_xml(record.uuid)
        vm = vm_facts(record, xml, source_caps.arch)
        if self.storage is not None:
            holders = await self.storage.holders([path for _t, path, _d in vm.disks])
            vm = replace(vm, disk_domains=holders)
        dest = await self._destination(request.to, vm, xml, request)
        mode, copied = storage_plan(vm, dest, request.storage)
        asked, request = request, request.model_copy(update={"storage": mode})
        source_end = await self.endpoint(source.name)
        dest_end = source_end
        if dest.known:
            dest_end = await self.endpoint(request.to)
            problems = tuple(transport.check(source_end, dest_end, request))
            early = _state(vm) + _destination(vm, source.name, dest)
            if not problems and not early and self._readiness is not None:
                # On the hosts, and only when nothing more fundamental refuses already.
                ready = await self._readiness.check(transport, source_end, dest_end)
                problems = ready.problems
            dest = replace(dest, transport_problems=problems)
        found = refusals(vm, source.name, source_caps, dest, asked)
        raise_refusals(found, name, request.to)
        return Checked(
            vm=vm,
            source=source,
            destination=self._hosts.connected(request.to),
            source_endpoint=source_end,
            destination_endpoint=dest_end,
            storage=mode,
            copied=copied,
            proven_shared=proven_shared(vm, copied),
        )

    async def _destination(
        self, name: str, vm: VmFacts, xml: str, request: MigrationRequest
    ) -> HostFacts:
        try:
            host = self._hosts.get(name)
        except NotFound:
            return HostFacts(name=name, known=False)
        base = HostFacts(
            name=name,
            connected=host.connected,
            maintenance=self._hosts.in_maintenance(name),
            last_error=self._hosts.last_error(name),
        )
        if not host.connected:
            return base
        try:
            return await self._probe(host, base, vm, xml, request)
        except CorralError as exc:
            return HostFacts(name=name, connected=False, last_error=exc.message)

    async def _probe(
        self, host: LibvirtHost, base: HostFacts, vm: VmFacts, xml: str, request: MigrationRequest
    ) -> HostFacts:
        caps = await host.capabilities()
        if CORRAL_NAT in vm.networks:
            await host.ensure_nat_network()
        paths = [path for _target, path, _device in vm.disks]
        gaps = await self.network_gaps(set(vm.networks)) if self.network_gaps else {}
        reached, reasons = (
            await self.storage.host_reach(host.name) if self.storage else (frozenset(), {})
        )
        return HostFacts(
            name=base.name,
            connected=True,
            maintenance=base.maintenance,
            caps=caps,
            cpu_problem=await host.migration.cpu_problem(xml),
            networks=frozenset(await host.migration.active_networks()),
            visible_paths=frozenset(await host.migration.visible_paths(paths)),
            pool_dirs=frozenset(await host.migration.pool_dirs()),
            clashes=tuple(await host.migration.clashes(vm.name, vm.uuid)),
            lacking_networks=gaps.get(base.name),
            reached_domains=reached,
            domain_reasons=reasons,
        )
