"""Node and domain statistics for utilisation sampling (worker threads: blocking calls).

Counters, not rates: CPU times are cumulative nanoseconds; the services layer turns two
readings into utilisations.
"""

from __future__ import annotations

import contextlib
import time

import libvirt

from corral.virt._records import node_memory_mib
from corral.virt.types import DomainCounters, NodeCounters

#: libvirt's ``virNodeSuspendForDuration`` targets.
SUSPEND_TARGETS = {
    "mem": libvirt.VIR_NODE_SUSPEND_TARGET_MEM,
    "disk": libvirt.VIR_NODE_SUSPEND_TARGET_DISK,
    "hybrid": libvirt.VIR_NODE_SUSPEND_TARGET_HYBRID,
}


def node_counters(conn: libvirt.virConnect) -> NodeCounters:
    """The node's cumulative CPU times, its memory, and every running domain's CPU time."""
    taken = time.monotonic()
    _model, cells_mib, cpus, *_rest = conn.getInfo()
    busy = total = None
    with contextlib.suppress(libvirt.libvirtError):  # drivers without node CPU statistics
        stats = conn.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS, 0)
        idle = int(stats.get("idle", 0)) + int(stats.get("iowait", 0))
        busy = int(stats.get("kernel", 0)) + int(stats.get("user", 0))
        total = busy + idle
    memory_mib, available_mib = node_memory_mib(conn, int(cells_mib))
    domains = []
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        try:
            _state, _max_kib, memory_kib, vcpus, cpu_time_ns = dom.info()
            domains.append(
                DomainCounters(
                    uuid=dom.UUIDString(),
                    name=dom.name(),
                    vcpus=int(vcpus),
                    memory_mib=int(memory_kib) // 1024,
                    cpu_time_ns=int(cpu_time_ns),
                )
            )
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise  # a domain that stopped meanwhile is simply not counted
    return NodeCounters(
        taken=taken,
        cpus=int(cpus),
        cpu_busy_ns=busy,
        cpu_total_ns=total,
        memory_total_mib=memory_mib,
        memory_available_mib=available_mib,
        domains=tuple(domains),
    )


def suspend_node(conn: libvirt.virConnect, target: str, duration_s: int) -> None:
    conn.suspendForDuration(SUSPEND_TARGETS[target], duration_s, 0)
