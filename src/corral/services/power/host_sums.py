"""Placement's picture of a host's load: its live domains as sums, not one demand per VM.

Placement moves no VM, so it needs only how much of each host is taken: the cluster view keeps
each host's sum of live domains (``ClusterView.running_sum``), and how busy a host is comes
from the host's own samples over the sustained window. A decision then costs as many objects
as there are hosts, whatever the number of VMs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from corral.model.placement import VmDemand
from corral.services.migrations.preflight import QEMU_OVERHEAD_MIB

#: The most one summed demand may hold (``VmDemand``'s limits): bigger sums are split.
_MAX_VCPUS = 512
_MAX_MEMORY_MIB = 4 * 1024 * 1024


def summed_demands(
    sums: Mapping[str, tuple[int, int, int]],
    cpus: Mapping[str, int],
    busy: Mapping[str, float],
) -> tuple[VmDemand, ...]:
    """One demand per host (domains, vCPUs, memory MiB of its live domains), QEMU's overhead
    counted per domain, split into equal parts where one would pass a VM's limits. Their
    names (``0_running_N_K``) are no VM's; their load is what the host's samples measured."""
    demands = []
    for i, (host, (domains, vcpus, memory)) in enumerate(sums.items()):
        if domains <= 0 or vcpus <= 0:
            continue
        memory += domains * QEMU_OVERHEAD_MIB
        parts = max(math.ceil(vcpus / _MAX_VCPUS), math.ceil(memory / _MAX_MEMORY_MIB))
        share = min(1.0, busy.get(host, 0.0) * cpus.get(host, 1) / vcpus)
        for k in range(parts):
            # Built from sums the view already checked, for every host at every create:
            # validating each again was a third of placement's cost at 10,000 VMs.
            demands.append(
                VmDemand.model_construct(
                    name=f"0_running_{i}_{k}",
                    vcpus=max(1, vcpus // parts + (1 if k < vcpus % parts else 0)),
                    memory_mib=max(1, memory // parts + (1 if k < memory % parts else 0)),
                    cpu_utilisation=share,
                    host=host,
                )
            )
    return tuple(demands)
