"""The libvirt calls of a live migration (worker threads; blocking).

:func:`libvirt_call` turns a transport's :class:`~corral.virt.transports.MigrationPlan` into
``virDomainMigrateToURI3``'s arguments; :func:`migrate` runs it. A failure of the migration
itself becomes :class:`~corral.errors.MigrationFailed` here, *not* through the generic mapping:
"client socket is closed" from a peer-to-peer migration is the source's connection to the
destination, not Corral's connection to the source.
"""

from __future__ import annotations

import contextlib
from typing import Any

import libvirt
from lxml import etree

from corral.errors import HostUnreachable, MigrationFailed
from corral.model.migration import MigrationStats
from corral.virt import _qmp
from corral.virt.transports import MigrationFlag, MigrationPlan

_FLAGS: dict[MigrationFlag, int] = {
    MigrationFlag.LIVE: libvirt.VIR_MIGRATE_LIVE,
    MigrationFlag.PEER2PEER: libvirt.VIR_MIGRATE_PEER2PEER,
    MigrationFlag.TUNNELLED: libvirt.VIR_MIGRATE_TUNNELLED,
    MigrationFlag.TLS: libvirt.VIR_MIGRATE_TLS,
    MigrationFlag.PERSIST_DEST: libvirt.VIR_MIGRATE_PERSIST_DEST,
    MigrationFlag.UNDEFINE_SOURCE: libvirt.VIR_MIGRATE_UNDEFINE_SOURCE,
    MigrationFlag.AUTO_CONVERGE: libvirt.VIR_MIGRATE_AUTO_CONVERGE,
    MigrationFlag.POSTCOPY: libvirt.VIR_MIGRATE_POSTCOPY,
    MigrationFlag.PARALLEL: libvirt.VIR_MIGRATE_PARALLEL,
    MigrationFlag.NON_SHARED_DISK: libvirt.VIR_MIGRATE_NON_SHARED_DISK,
    MigrationFlag.ABORT_ON_ERROR: libvirt.VIR_MIGRATE_ABORT_ON_ERROR,
    MigrationFlag.COMPRESSED: libvirt.VIR_MIGRATE_COMPRESSED,
    MigrationFlag.UNSAFE: libvirt.VIR_MIGRATE_UNSAFE,
}


def libvirt_call(plan: MigrationPlan) -> tuple[str, dict[str, Any], int]:
    """(destination URI, typed parameters, flags) for ``migrateToURI3``."""
    params: dict[str, Any] = {}
    if plan.stream_uri:
        params[libvirt.VIR_MIGRATE_PARAM_URI] = plan.stream_uri
    if plan.tls_destination:
        params[libvirt.VIR_MIGRATE_PARAM_TLS_DESTINATION] = plan.tls_destination
    if plan.bandwidth_mib_s:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = plan.bandwidth_mib_s
    if plan.parallel_connections:
        params[libvirt.VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS] = plan.parallel_connections
    if plan.auto_converge_initial is not None:
        params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL] = plan.auto_converge_initial
    if plan.auto_converge_increment is not None:
        params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT] = plan.auto_converge_increment
    if plan.xbzrle_cache_bytes is not None:
        params[libvirt.VIR_MIGRATE_PARAM_COMPRESSION] = "xbzrle"
        params[libvirt.VIR_MIGRATE_PARAM_COMPRESSION_XBZRLE_CACHE] = plan.xbzrle_cache_bytes
    if plan.copy_disks:
        params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = list(plan.copy_disks)
    params.update(plan.extra)
    flags = 0
    for flag in plan.flags:
        flags |= _FLAGS[flag]
    return plan.destination_uri, params, flags


def migrate(conn: libvirt.virConnect, dom: libvirt.virDomain, plan: MigrationPlan) -> None:
    """Set the downtime limit, then migrate; returns when libvirt finished (success) or
    raises MigrationFailed (the domain is still on the source), or HostUnreachable when
    Corral's own connection to the source went away meanwhile (outcome unknown)."""
    uri, params, flags = libvirt_call(plan)
    try:
        dom.migrateSetMaxDowntime(plan.max_downtime_ms, 0)
        dom.migrateToURI3(uri, params, flags)
    except libvirt.libvirtError as err:
        message = err.get_error_message() or str(err)
        alive = False
        with contextlib.suppress(libvirt.libvirtError):
            alive = bool(conn.isAlive())
        if not alive:
            raise HostUnreachable(
                f"Corral lost its connection to the source host during the migration ({message})"
            ) from err
        raise MigrationFailed(message, err.get_error_code()) from err


def stats(job: dict[str, Any]) -> MigrationStats | None:
    """libvirt's job statistics as MigrationStats; None when there is no job."""
    if job.get("type", libvirt.VIR_DOMAIN_JOB_NONE) == libvirt.VIR_DOMAIN_JOB_NONE:
        return None
    page = int(job.get("memory_page_size") or 4096)
    dirty = job.get("memory_dirty_rate")

    def get(key: str) -> int | None:
        value = job.get(key)
        return int(value) if value is not None else None

    return MigrationStats(
        time_elapsed_ms=get("time_elapsed"),
        data_total=get("data_total"),
        data_processed=get("data_processed"),
        data_remaining=get("data_remaining"),
        memory_bps=get("memory_bps"),
        dirty_rate_bps=int(dirty) * page if dirty is not None else None,
        iteration=get("memory_iteration"),
        downtime_ms=get("downtime"),
        disk_total=get("disk_total"),
        disk_processed=get("disk_processed"),
        disk_remaining=get("disk_remaining"),
        postcopy_requests=get("memory_postcopy_requests"),
    )


def active_stats(dom: libvirt.virDomain) -> MigrationStats | None:
    return stats(dom.jobStats(0))


def completed_stats(dom: libvirt.virDomain) -> MigrationStats | None:
    """The finished job's statistics (on the destination: total time and real downtime)."""
    try:
        return stats(dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED))
    except libvirt.libvirtError:
        return None


def failure_detail(dom: libvirt.virDomain) -> str | None:
    """The source QEMU's description of a failed migration, if it has one."""
    try:
        return _qmp.migration_error(dom)
    except (libvirt.libvirtError, ValueError):
        return None


def cpu_check(conn: libvirt.virConnect, domain_xml: str) -> str | None:
    """Whether the destination (``conn``) can run the domain's CPU: None when it can (or
    when the domain asks for no particular model), else libvirt's explanation."""
    root = etree.fromstring(domain_xml.encode())
    cpu = root.find("cpu")
    if cpu is None or (cpu.get("mode") in (None, "custom") and cpu.find("model") is None):
        return None
    if cpu.get("mode") == "host-passthrough":
        return "its CPU is host-passthrough: it can only move between identical host CPUs"
    os_type = root.find("os/type")
    arch = os_type.get("arch") if os_type is not None else None
    machine = os_type.get("machine") if os_type is not None else None
    try:
        result = conn.compareHypervisorCPU(
            None,
            arch,
            machine,
            root.get("type"),
            etree.tostring(cpu).decode(),
            libvirt.VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE,
        )
    except libvirt.libvirtError as err:
        unsupported = (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_OPERATION_UNSUPPORTED)
        if err.get_error_code() in unsupported:
            return None  # a driver that cannot compare (libvirt's test driver)
        return err.get_error_message() or str(err)
    if result == libvirt.VIR_CPU_COMPARE_INCOMPATIBLE:
        return "libvirt says the CPU models are incompatible"
    return None


def network_names(domain_xml: str) -> list[str]:
    """The libvirt networks the domain's interfaces use."""
    root = etree.fromstring(domain_xml.encode())
    return [
        str(source.get("network"))
        for source in root.iterfind("devices/interface[@type='network']/source")
        if source.get("network")
    ]


def active_networks(conn: libvirt.virConnect) -> set[str]:
    return {net.name() for net in conn.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE)}


def visible_paths(conn: libvirt.virConnect, paths: list[str]) -> set[str]:
    """Which of ``paths`` the host's storage pools hold (pools refreshed first: shared
    storage may have gained files another host wrote)."""
    for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
        with contextlib.suppress(libvirt.libvirtError):
            pool.refresh(0)
    found = set()
    for path in paths:
        with contextlib.suppress(libvirt.libvirtError):
            conn.storageVolLookupByPath(path)
            found.add(path)
    return found


def pool_dirs(conn: libvirt.virConnect) -> set[str]:
    """The target directories of the host's active directory pools."""
    dirs = set()
    for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
        with contextlib.suppress(libvirt.libvirtError):
            path = etree.fromstring(pool.XMLDesc(0).encode()).findtext("target/path")
            if path:
                dirs.add(path.rstrip("/"))
    return dirs


def domains_named(conn: libvirt.virConnect, name: str, uuid: str) -> list[str]:
    """Domains on the host that clash with a VM arriving as ``name``/``uuid``."""
    clashes = []
    for dom in conn.listAllDomains(0):
        if dom.name() == name or dom.UUIDString() == uuid:
            clashes.append(f"{dom.name()} ({dom.UUIDString()})")
    return clashes
