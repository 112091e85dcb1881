"""What a plan does to a cluster (``apply_plan``) and whether it still fits it (``plan_is_stale``).

The executor checks a plan against the cluster as it is *now* before each run: VMs stop, grow
and move on their own, hosts drop out. A stale plan is thrown away and the planner asked again;
executing it could overcommit a host or break anti-affinity.
"""

from __future__ import annotations

from corral.errors import InvalidRequest
from corral.model.placement import ClusterState, HostMode, Plan
from corral.placement.feasibility import Ledger


def apply_plan(cluster: ClusterState, plan: Plan) -> ClusterState:
    """The cluster after ``plan``: woken hosts connected, VMs moved, standby hosts in standby.

    Pure. Raises ``InvalidRequest`` when the plan does not match the cluster (an unknown host,
    a VM that is not on the migration's source, a host to wake that is not in standby, a host
    to put in standby that still runs VMs). Limits are not checked here: ``stale_reasons`` does.
    """
    modes = {h.name: h.mode for h in cluster.hosts}
    where: dict[str, str | None] = {vm.name: vm.host for vm in cluster.vms}
    for host in plan.wake:
        if modes.get(host) is not HostMode.STANDBY:
            raise InvalidRequest(f"cannot wake {host}: it is not a host in standby")
        modes[host] = HostMode.CONNECTED
    for m in plan.migrations:
        if where.get(m.vm) != m.source:
            raise InvalidRequest(f"cannot move {m.vm} from {m.source}: it is not running there")
        if modes.get(m.target) is not HostMode.CONNECTED:
            raise InvalidRequest(f"cannot move {m.vm} to {m.target}: not a connected host")
        where[m.vm] = m.target
    busy = set(where.values())
    for host in plan.standby:
        if modes.get(host) is not HostMode.CONNECTED or host in busy:
            raise InvalidRequest(f"cannot put {host} in standby: not a connected, empty host")
        modes[host] = HostMode.STANDBY
    hosts = tuple(
        h if h.mode is modes[h.name] else h.model_copy(update={"mode": modes[h.name]})
        for h in cluster.hosts
    )
    vms = tuple(
        vm if vm.host == where[vm.name] else vm.model_copy(update={"host": where[vm.name]})
        for vm in cluster.vms
    )
    return ClusterState(hosts=hosts, vms=vms)


def stale_reasons(plan: Plan, current: ClusterState) -> list[str]:
    """Why ``plan`` can no longer run on ``current``, step by step; empty when it still can.

    Replays the plan on ``current`` under the plan's own settings and checks every step: hosts
    to wake are in standby, each VM still runs on its migration's source with the demand the
    plan assumed, each target keeps every limit after the move (memory, vCPUs, anti-affinity,
    utilisation ≤ high), and hosts to put in standby are connected and empty by then.
    """
    ledger = Ledger(current, plan.settings)
    reasons: list[str] = []
    for host in plan.wake:
        if ledger.mode.get(host) is not HostMode.STANDBY:
            reasons.append(f"{host} is no longer a host in standby")
        else:
            ledger.set_mode(host, HostMode.CONNECTED)
    for m in plan.migrations:
        vm = ledger.vms.get(m.vm)
        if vm is None:
            reasons.append(f"VM {m.vm} no longer runs")
        elif ledger.host_of[m.vm] != m.source:
            reasons.append(f"VM {m.vm} now runs on {ledger.host_of[m.vm]}, not {m.source}")
        elif (vm.memory_mib, vm.vcpus) != (m.memory_mib, m.vcpus):
            reasons.append(
                f"VM {m.vm} now has {vm.memory_mib} MiB and {vm.vcpus} vCPUs, "
                f"not {m.memory_mib} MiB and {m.vcpus} vCPUs"
            )
        elif m.target not in ledger.mode:
            reasons.append(f"host {m.target} is gone")
        elif (refusal := ledger.refusal(vm, m.target)) is not None:
            reasons.append(f"moving {m.vm} to {m.target}: {refusal.detail}")
        else:
            ledger.move(m.vm, m.target)
    for host in plan.standby:
        if ledger.mode.get(host) is not HostMode.CONNECTED:
            reasons.append(f"{host} is no longer a connected host")
        elif not ledger.is_empty(host):
            reasons.append(f"{host} would still run {', '.join(sorted(ledger.vms_on[host]))}")
    return reasons


def plan_is_stale(plan: Plan, current: ClusterState) -> bool:
    """True when ``plan`` no longer fits ``current`` (see ``stale_reasons``): re-plan instead."""
    return bool(stale_reasons(plan, current))
