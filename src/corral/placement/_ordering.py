"""Order a plan's migrations so that every intermediate state keeps the limits.

The planner's journal may move a VM twice (relieved onto a host that a later round empties).
The plan moves each VM once, straight to where it ends. In the planner's rounds, the hosts that
lose VMs and those that gain them are distinct, so gaining hosts only ever grow towards a final
state that keeps the limits, and any order works. Only a host that first sheds load and later
takes some (a relieved host) needs its departures first: the greedy passes below find that
order. Should they get stuck (two full hosts exchanging VMs), the caller falls back to the
journal's own sequence, feasible by construction at the cost of the extra migrations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from corral.model.placement import ClusterState, HostMode, PolicySettings
from corral.placement.feasibility import Ledger

Move = tuple[str, str, str]  # vm, source, target


def direct_moves(cluster: ClusterState, final_host: Mapping[str, str]) -> list[Move]:
    """One move per VM whose host changed, grouped by source host (cluster order)."""
    rank = {h.name: i for i, h in enumerate(cluster.hosts)}
    moves = [
        (vm.name, vm.host, final_host[vm.name])
        for vm in cluster.vms
        if vm.host is not None and final_host[vm.name] != vm.host
    ]
    moves.sort(key=lambda m: (rank[m[1]], m[0]))
    return moves


def feasible_order(
    cluster: ClusterState, settings: PolicySettings, moves: list[Move], woken: Iterable[str]
) -> list[Move] | None:
    """``moves`` in an order where each keeps every limit, hosts in ``woken`` being up from the
    start; None when greedy passes find no such order."""
    ledger = Ledger(cluster, settings)
    for host in woken:
        ledger.set_mode(host, HostMode.CONNECTED)
    ordered: list[Move] = []
    pending = moves
    while pending:
        waiting: list[Move] = []
        for move in pending:
            vm, _, target = move
            if ledger.fits(ledger.vms[vm], target):
                ledger.move(vm, target)
                ordered.append(move)
            else:
                waiting.append(move)
        if len(waiting) == len(pending):
            return None
        pending = waiting
    return ordered
