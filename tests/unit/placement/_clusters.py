"""Cluster builders, hypothesis strategies and an independent plan checker for placement tests.

The checker recomputes every limit from the raw ``ClusterState`` with plain sums, sharing no
code with ``corral.placement``: a bug in the planner's ledger cannot hide itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from corral.model.placement import (
    ClusterState,
    HostMode,
    HostState,
    PlacementPolicy,
    Plan,
    PolicySettings,
    PowerModel,
    UtilisationSample,
    VmDemand,
)

NOW = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
Samples = dict[str, list[UtilisationSample]]


def host(name: str, cpus: int = 8, memory_mib: int = 8192, **kw: object) -> HostState:
    return HostState(name=name, cpus=cpus, memory_mib=memory_mib, **kw)  # type: ignore[arg-type]


def vm(name: str, on: str, memory_mib: int = 1024, vcpus: int = 1, **kw: object) -> VmDemand:
    return VmDemand(name=name, host=on, memory_mib=memory_mib, vcpus=vcpus, **kw)  # type: ignore[arg-type]


def flat(cpu: float, minutes: float = 2.0) -> list[UtilisationSample]:
    """A host steady at ``cpu`` over the whole window."""
    return [
        UtilisationSample(at=NOW - timedelta(minutes=minutes), cpu=cpu),
        UtilisationSample(at=NOW, cpu=cpu),
    ]


# -- independent arithmetic ------------------------------------------------------------------


def load_m(v: VmDemand) -> int:
    return round(v.vcpus * v.cpu_utilisation * 1000)


def host_util(cluster: ClusterState, name: str, where: dict[str, str]) -> float:
    h = next(x for x in cluster.hosts if x.name == name)
    load = round(h.cpu_overhead * 1000) + sum(
        load_m(v) for v in cluster.vms if where[v.name] == name
    )
    return load / (h.cpus * 1000)


def exact_samples(cluster: ClusterState) -> Samples:
    """Samples that measure exactly what the VMs' demands predict (capped at 100 %)."""
    where = {v.name: v.host or "" for v in cluster.vms}
    return {h.name: flat(min(host_util(cluster, h.name, where), 1.0)) for h in cluster.hosts}


def violations(
    cluster: ClusterState,
    settings: PolicySettings,
    where: dict[str, str],
    name: str,
    arrived: VmDemand | None = None,
) -> list[str]:
    """The limits host ``name`` breaks with VMs placed as in ``where``; anti-affinity is checked
    for the VM that just ``arrived`` (a pair already sharing a host in the input is not the
    plan's doing, and plans only move VMs away from it)."""
    h = next(x for x in cluster.hosts if x.name == name)
    on = [v for v in cluster.vms if where[v.name] == name]
    found = []
    mem_cap = math.floor(h.memory_mib * settings.memory_overcommit) - h.memory_overhead_mib
    if sum(v.memory_mib for v in on) > mem_cap:
        found.append(f"{name}: memory overcommitted")
    if sum(v.vcpus for v in on) > math.floor(h.cpus * settings.cpu_overcommit):
        found.append(f"{name}: vCPUs overcommitted")
    if arrived is not None and arrived.anti_affinity_group is not None:
        group = [v.name for v in on if v.anti_affinity_group == arrived.anti_affinity_group]
        if len(group) > 1:
            found.append(f"{name}: anti-affinity broken ({', '.join(group)})")
    if host_util(cluster, name, where) > settings.high_utilisation:
        found.append(f"{name}: over high")
    return found


@dataclass
class Replay:
    """The cluster after each step of a plan, as the checker saw it."""

    final_where: dict[str, str]
    final_mode: dict[str, HostMode]
    problems: list[str]


def replay(cluster: ClusterState, plan: Plan) -> Replay:
    """Run ``plan`` on ``cluster`` step by step and note every broken rule."""
    settings = plan.settings
    mode = {h.name: h.mode for h in cluster.hosts}
    where = {v.name: v.host or "" for v in cluster.vms}
    problems: list[str] = []
    for name in plan.wake:
        if mode[name] is not HostMode.STANDBY:
            problems.append(f"wakes {name}, which is {mode[name]}")
        mode[name] = HostMode.CONNECTED
    for i, m in enumerate(plan.migrations):
        if where[m.vm] != m.source:
            problems.append(f"step {i}: {m.vm} is on {where[m.vm]}, not {m.source}")
        if mode[m.target] is not HostMode.CONNECTED or mode[m.source] is not HostMode.CONNECTED:
            problems.append(f"step {i}: {m.source} -> {m.target} touches a host not connected")
        if m.source == m.target:
            problems.append(f"step {i}: moves {m.vm} nowhere")
        where[m.vm] = m.target
        arrived = next(v for v in cluster.vms if v.name == m.vm)
        found = violations(cluster, settings, where, m.target, arrived)
        problems += [f"step {i}: {p}" for p in found]
    for name in plan.standby:
        if mode[name] is not HostMode.CONNECTED:
            problems.append(f"puts {name} in standby, which is {mode[name]}")
        if any(h == name for h in where.values()):
            problems.append(f"puts {name} in standby while it still runs VMs")
        mode[name] = HostMode.STANDBY
    return Replay(where, mode, problems)


def empty_running(cluster: ClusterState, where: dict[str, str], mode: dict[str, HostMode]) -> int:
    busy = set(where.values())
    return sum(
        1 for h in cluster.hosts if mode[h.name] is HostMode.CONNECTED and h.name not in busy
    )


# -- strategies ------------------------------------------------------------------------------


@st.composite
def clusters(draw: st.DrawFn, max_hosts: int = 6, max_vms: int = 20) -> ClusterState:
    """Small clusters of mixed hosts. VMs are placed within the default limits where possible
    (``tidy``) or anywhere (real clusters can be over their limits)."""
    hosts = []
    for i in range(draw(st.integers(1, max_hosts))):
        hosts.append(
            HostState(
                name=f"h{i}",
                cpus=draw(st.sampled_from([2, 4, 8, 16])),
                memory_mib=draw(st.sampled_from([1024, 2048, 4096, 8192])),
                mode=draw(st.sampled_from([HostMode.CONNECTED] * 5 + list(HostMode))),
                memory_overhead_mib=draw(st.sampled_from([0, 0, 256])),
                cpu_overhead=draw(st.sampled_from([0.0, 0.0, 0.1, 0.4])),
                power=PowerModel(idle_w=draw(st.sampled_from([60.0, 100.0, 150.0]))),
                can_standby=draw(st.sampled_from([True, True, True, False])),
            )
        )
    usable = [h for h in hosts if h.mode is not HostMode.STANDBY]
    if not usable:
        return ClusterState(hosts=tuple(hosts))
    tidy = draw(st.booleans())
    used = {h.name: [0, 0] for h in hosts}  # memory, vCPUs
    vms = []
    for j in range(draw(st.integers(0, max_vms))):
        memory = draw(st.sampled_from([128, 256, 512, 1024, 2048]))
        vcpus = draw(st.integers(1, 4))
        start = draw(st.integers(0, len(usable) - 1))
        ring = usable[start:] + usable[:start]
        fits = [
            h
            for h in ring
            if used[h.name][0] + memory <= h.memory_mib - h.memory_overhead_mib
            and used[h.name][1] + vcpus <= 4 * h.cpus
        ]
        if tidy and not fits:
            continue
        chosen = fits[0] if tidy else ring[0]
        used[chosen.name][0] += memory
        used[chosen.name][1] += vcpus
        vms.append(
            VmDemand(
                name=f"vm{j}",
                vcpus=vcpus,
                memory_mib=memory,
                cpu_utilisation=draw(st.sampled_from([0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8])),
                anti_affinity_group=draw(st.sampled_from([None, None, None, "a", "b"])),
                host=chosen.name,
            )
        )
    return ClusterState(hosts=tuple(hosts), vms=tuple(vms))


@st.composite
def policy_settings(draw: st.DrawFn) -> PolicySettings:
    return PolicySettings(
        policy=draw(st.sampled_from([PlacementPolicy.POWER_SAVING] * 3 + list(PlacementPolicy))),
        memory_overcommit=draw(st.sampled_from([1.0, 1.0, 1.5])),
        cpu_overcommit=draw(st.sampled_from([1.0, 4.0, 4.0])),
        high_utilisation=draw(st.sampled_from([0.6, 0.75, 0.9])),
        low_utilisation=draw(st.sampled_from([0.1, 0.2, 0.3])),
        hosts_in_reserve=draw(st.integers(0, 2)),
    )


@st.composite
def any_samples(draw: st.DrawFn, cluster: ClusterState) -> Samples:
    """Measurements that need not match the demands: any level, sometimes too short a window."""
    samples: Samples = {}
    for h in cluster.hosts:
        kind = draw(st.sampled_from(["flat", "flat", "spiky", "short", "none"]))
        level = draw(st.sampled_from([0.0, 0.05, 0.15, 0.5, 0.8, 1.0]))
        if kind == "flat":
            samples[h.name] = flat(level)
        elif kind == "spiky":
            samples[h.name] = [
                *flat(level),
                UtilisationSample(at=NOW - timedelta(minutes=1), cpu=0.95),
            ]
        elif kind == "short":
            samples[h.name] = [UtilisationSample(at=NOW - timedelta(seconds=30), cpu=level)]
    return samples
