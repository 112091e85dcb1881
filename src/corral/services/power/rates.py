"""Two readings of a host's counters → utilisations (pure).

A host's CPU utilisation is the share of its CPUs that were busy between the readings: from
the node's CPU statistics (``node``), or from the CPU time its running VMs used (``domains``:
for hosts that share a kernel with others, such as containers or Corral's test bed, where
the node statistics are the whole machine's). A VM's is the share of its vCPUs it kept busy.
Counters that went backwards (a restarted daemon, a domain started anew) give no figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from corral.virt.types import NodeCounters

CpuSource = Literal["node", "domains"]


@dataclass(frozen=True)
class VmRate:
    uuid: str
    name: str
    cpu: float
    memory_mib: int


@dataclass(frozen=True)
class HostRate:
    cpu: float
    memory_used_mib: int
    memory_total_mib: int
    vms: tuple[VmRate, ...]


def _clip(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def rates(before: NodeCounters, after: NodeCounters, source: CpuSource) -> HostRate | None:
    """Utilisations between two readings; None when they cannot be compared."""
    elapsed_ns = (after.taken - before.taken) * 1e9
    if elapsed_ns <= 0:
        return None
    earlier = {d.uuid: d for d in before.domains}
    vms = []
    domains_busy_ns = 0
    for dom in after.domains:
        old = earlier.get(dom.uuid)
        if old is None or dom.cpu_time_ns < old.cpu_time_ns:
            continue
        used = dom.cpu_time_ns - old.cpu_time_ns
        domains_busy_ns += used
        cpu = _clip(used / (elapsed_ns * max(dom.vcpus, 1)))
        vms.append(VmRate(dom.uuid, dom.name, cpu, dom.memory_mib))
    node = _node_cpu(before, after)
    if source == "domains" or node is None:
        cpu = _clip(domains_busy_ns / (elapsed_ns * max(after.cpus, 1)))
    else:
        cpu = node
    if source == "domains":  # the node's memory figures are the machine's too
        used_mib = sum(d.memory_mib for d in after.domains)
    else:
        used_mib = max(after.memory_total_mib - after.memory_available_mib, 0)
    return HostRate(cpu, used_mib, after.memory_total_mib, tuple(vms))


def _node_cpu(before: NodeCounters, after: NodeCounters) -> float | None:
    if None in (before.cpu_busy_ns, before.cpu_total_ns, after.cpu_busy_ns, after.cpu_total_ns):
        return None
    assert before.cpu_busy_ns is not None and before.cpu_total_ns is not None  # for mypy
    assert after.cpu_busy_ns is not None and after.cpu_total_ns is not None
    total = after.cpu_total_ns - before.cpu_total_ns
    busy = after.cpu_busy_ns - before.cpu_busy_ns
    if total <= 0 or busy < 0:
        return None
    return _clip(busy / total)
