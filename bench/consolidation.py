"""Consolidation planning on a seeded synthetic cluster: 1,000 hosts and 10,000 VMs.

The cluster is in the state consolidation is for: VMs spread over every host (each placed on a
host drawn at random, as years of "evenly distributed" placement and churn leave them), memory
about a quarter used and CPUs mostly idle (VM utilisation from a beta distribution, mean ~13 %,
plus 5 % busy VMs). Hosts are one model, as in a cluster bought together (48 CPUs, 256 GiB of
which 8 GiB for the host itself, the default power model 100 W idle -> 250 W at full load);
VMs come in six sizes from 1 GiB/1 vCPU to 32 GiB/8 vCPUs, and about 14 % of them sit in
anti-affinity groups of two or three replicas. Every host reports three samples over the
window, the VMs' load with ±10 % measurement noise.

Figures:

- plan time of ``plan_consolidation`` (median of ``--repeat`` runs; target <= 1 s);
- hosts left running against the lower bound ``max over memory, vCPUs and CPU of
  ceil(total demand / capacity per host)``. The capacities are those the planner must respect:
  memory after the host's own share, vCPUs under the 4.0 overcommit ratio, CPU up to the
  ``high`` threshold (75 %) it may not fill hosts beyond. Memory binds here, as in most
  clusters; the max of the three keeps the bound honest if another dimension does (target
  <= 1.03);
- migrations against first-fit decreasing from scratch, which re-packs every VM without
  regard to where it runs (target: fewer), and against the floor for the hosts kept (every VM
  not on the busiest hosts must move);
- estimated power after the plan against the cluster left as it is.

The plan is also checked: it must replay on the cluster step by step (``plan_is_stale``) and
planning again on its result must propose nothing.

    .venv/bin/python bench/consolidation.py [--json] [--seed 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from _report import report  # noqa: E402

from corral.model.placement import (  # noqa: E402
    ClusterState,
    HostMode,
    HostState,
    Plan,
    PolicySettings,
    PowerModel,
    UtilisationSample,
    VmDemand,
)
from corral.placement import apply_plan, plan_consolidation, plan_is_stale  # noqa: E402
from corral.placement.feasibility import (  # noqa: E402
    Ledger,
    memory_capacity_mib,
    vcpu_capacity,
    vm_load_m,
)
from corral.placement.power_model import ledger_watts  # noqa: E402

HOSTS = 1_000
VMS = 10_000
GIB = 1024
# (memory MiB, vCPUs, weight): a typical private-cloud flavour mix.
FLAVOURS = [(1 * GIB, 1, 15), (2 * GIB, 1, 25), (4 * GIB, 2, 30), (8 * GIB, 4, 18)]
FLAVOURS += [(16 * GIB, 8, 9), (32 * GIB, 8, 3)]
NOW = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
Samples = dict[str, list[UtilisationSample]]


@dataclass
class Figures:
    plan: Plan
    seconds: float
    hosts: int
    bound: int
    binding: str
    ffd_hosts: int
    ffd_moves: int
    ffd_watts: float
    move_floor: int


def synthetic_cluster(seed: int) -> ClusterState:
    """Hosts and VMs as described in the module docstring."""
    rng = random.Random(seed)
    hosts = tuple(
        HostState(name=f"h{i:04d}", cpus=48, memory_mib=256 * GIB, memory_overhead_mib=8 * GIB)
        for i in range(HOSTS)
    )
    room = {h.name: h.memory_mib - h.memory_overhead_mib for h in hosts}
    groups_on: dict[str, set[str]] = {h.name: set() for h in hosts}
    sizes = rng.choices(FLAVOURS, weights=[f[2] for f in FLAVOURS], k=VMS)
    vms: list[VmDemand] = []
    group, left_in_group = None, 0
    for i, (memory, vcpus, _) in enumerate(sizes):
        if left_in_group == 0 and rng.random() < 0.06:  # about 14 % of VMs end up in a group
            group, left_in_group = f"app{i:05d}", rng.choice((2, 3))
        busy = rng.random() < 0.05
        util = rng.uniform(0.4, 0.9) if busy else rng.betavariate(1.3, 9)
        host = rng.choice(hosts).name
        # A real cluster never started a VM where it did not fit: draw again.
        while room[host] < memory or (group is not None and group in groups_on[host]):
            host = rng.choice(hosts).name
        room[host] -= memory
        if group is not None:
            groups_on[host].add(group)
        vms.append(
            VmDemand(
                name=f"vm{i:05d}",
                vcpus=vcpus,
                memory_mib=memory,
                cpu_utilisation=round(util, 3),
                anti_affinity_group=group,
                host=host,
            )
        )
        left_in_group -= 1 if group is not None else 0
        if left_in_group == 0:
            group = None
    return ClusterState(hosts=hosts, vms=tuple(vms))


def samples_for(
    cluster: ClusterState, settings: PolicySettings, rng: random.Random | None
) -> Samples:
    """Three samples per host over the window: the VMs' load, measured with ±10 % noise (exact
    without ``rng``: the re-plan check measures the plan's result as the planner predicts it)."""
    ledger = Ledger(cluster, settings)
    step = timedelta(minutes=settings.sustained_minutes / 2)

    def measured(host: str) -> float:
        noise = rng.uniform(0.9, 1.1) if rng is not None else 1.0
        return min(ledger.util(host) * noise, 1.0)

    return {
        h: [UtilisationSample(at=NOW - k * step, cpu=measured(h)) for k in (2, 1, 0)]
        for h in ledger.names
    }


def lower_bound(cluster: ClusterState, settings: PolicySettings) -> tuple[int, str]:
    """Fewest hosts any plan keeping the limits could use, and the dimension that binds."""
    host = cluster.hosts[0]  # one host model
    cpu_cap = math.floor(settings.high_utilisation * host.cpus * 1000)
    bounds = {
        "memory": math.ceil(
            sum(v.memory_mib for v in cluster.vms) / memory_capacity_mib(host, settings)
        ),
        "vcpus": math.ceil(sum(v.vcpus for v in cluster.vms) / vcpu_capacity(host, settings)),
        "cpu": math.ceil(sum(vm_load_m(v) for v in cluster.vms) / cpu_cap),
    }
    binding = max(bounds, key=lambda k: bounds[k])
    return bounds[binding], binding


def first_fit_decreasing(cluster: ClusterState, settings: PolicySettings) -> Ledger:
    """Re-pack every VM from scratch: largest memory first, each on the first host that takes
    it within the same limits (memory, vCPUs, CPU <= high, anti-affinity)."""
    # Every VM starts on a staging host in maintenance (never a target, drawing no power),
    # so that the re-packing uses the planner's own limit checks and nothing else.
    staging = HostState(
        name="staging",
        cpus=65536,
        memory_mib=1 << 30,
        mode=HostMode.MAINTENANCE,
        power=PowerModel(idle_w=0, max_w=0, standby_w=0),
    )
    vms = tuple(v.model_copy(update={"host": "staging"}) for v in cluster.vms)
    ledger = Ledger(ClusterState(hosts=(*cluster.hosts, staging), vms=vms), settings)
    open_hosts = [h.name for h in cluster.hosts]
    smallest = min(v.memory_mib for v in vms)
    for vm in sorted(vms, key=lambda v: (-v.memory_mib, -v.vcpus, v.name)):
        host = next(h for h in open_hosts if ledger.fits(vm, h))
        ledger.move(vm.name, host)
        if ledger.free_memory(host) < smallest:
            open_hosts.remove(host)  # full: first fit would only skip it from now on
    for h in open_hosts:
        if ledger.is_empty(h):
            ledger.set_mode(h, HostMode.STANDBY)
    return ledger


def migration_floor(cluster: ClusterState, kept: int) -> int:
    """Fewest migrations that can leave only ``kept`` hosts running: every VM not on the
    ``kept`` hosts that run the most VMs must move, whatever the limits allow."""
    counts = Counter(v.host for v in cluster.vms)
    return len(cluster.vms) - sum(sorted(counts.values(), reverse=True)[:kept])


def running_hosts(ledger: Ledger) -> int:
    return sum(1 for h in ledger.names if ledger.is_up(h) and not ledger.is_empty(h))


def measure(cluster: ClusterState, settings: PolicySettings, seed: int, repeat: int) -> Figures:
    """Plan (timed), check the plan, and compare it with FFD and the lower bound."""
    samples = samples_for(cluster, settings, random.Random(seed + 1))
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        plan = plan_consolidation(cluster, samples, NOW, settings)
        times.append(time.perf_counter() - started)
    if plan_is_stale(plan, cluster):
        raise SystemExit("the plan does not replay on the cluster it was made for")
    after = apply_plan(cluster, plan)
    replan = plan_consolidation(after, samples_for(after, settings, None), NOW, settings)
    if not replan.is_empty:
        raise SystemExit(f"planning again on the result proposes {replan.reasons}")
    ffd = first_fit_decreasing(cluster, settings)
    where = {v.name: v.host for v in cluster.vms}
    bound, binding = lower_bound(cluster, settings)
    used = running_hosts(Ledger(after, settings))
    return Figures(
        plan=plan,
        seconds=statistics.median(times),
        hosts=used,
        bound=bound,
        binding=binding,
        ffd_hosts=running_hosts(ffd),
        ffd_moves=sum(1 for vm, host in ffd.host_of.items() if where[vm] != host),
        ffd_watts=ledger_watts(ffd),
        move_floor=migration_floor(cluster, used),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    f = measure(synthetic_cluster(args.seed), PolicySettings(), args.seed, args.repeat)
    plan = f.plan
    rows: list[dict[str, object]] = [
        {"approach": "as it is", "hosts": HOSTS, "vs_bound": HOSTS / f.bound, "migrations": 0,
         "watts": plan.watts_before, "seconds": ""},
        {"approach": "corral plan", "hosts": f.hosts, "vs_bound": f.hosts / f.bound,
         "migrations": len(plan.migrations), "watts": plan.watts_after, "seconds": f.seconds},
        {"approach": "FFD from scratch", "hosts": f.ffd_hosts, "vs_bound": f.ffd_hosts / f.bound,
         "migrations": f.ffd_moves, "watts": f.ffd_watts, "seconds": ""},
        {"approach": f"lower bound ({f.binding})", "hosts": f.bound, "vs_bound": 1.0,
         "migrations": "", "watts": "", "seconds": ""},
        {"approach": f"migration floor ({f.hosts} hosts)", "hosts": "", "vs_bound": "",
         "migrations": f.move_floor, "watts": "", "seconds": ""},
    ]  # fmt: skip
    report(
        f"consolidation planning, {HOSTS:,} hosts / {VMS:,} VMs (seed {args.seed})",
        rows,
        {
            "plan_seconds": f.seconds,
            "hosts_vs_lower_bound": f.hosts / f.bound,
            "migrations_vs_ffd": len(plan.migrations) / f.ffd_moves,
            "energy_vs_none": plan.watts_after / plan.watts_before,
        },
        json_mode=args.json,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
