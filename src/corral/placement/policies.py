"""Initial placement: the host a new VM starts on (``vm create`` without ``--host``).

Filters, then weighs (oVirt's scheduler does the same). Filters are the hard limits of
``feasibility`` except CPU utilisation: hosts in maintenance or standby, hosts without the
memory or vCPUs the VM asks for, and hosts running another VM of its anti-affinity group are
out; so are hosts that lack images the VM names (``lacking``: a VM uses its host's images).
Among the rest, hosts that stay at or below ``high`` come first (a host that would go over is
still better than refusing the VM), then the policy decides:

- ``power_saving`` packs: the host left with the least free memory (best fit; memory is what
  usually runs out), busier hosts first on a tie. Empty hosts are used last.
- ``evenly_distributed`` spreads: the host left with the lowest CPU utilisation, then the one
  with the most free memory.

Ties end on the host name, so the choice is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping

from corral.errors import HostRefusal, InvalidRequest, NoHostFits
from corral.model.placement import ClusterState, PlacementPolicy, PolicySettings, VmDemand
from corral.placement._reasons import no_host
from corral.placement.feasibility import Constraint, Ledger, utilisation, vm_load_m


def choose_host(
    vm: VmDemand,
    cluster: ClusterState,
    settings: PolicySettings | None = None,
    *,
    lacking: Mapping[str, str] | None = None,
    unreached: Mapping[str, str] | None = None,
) -> str:
    """The host ``vm`` should start on. ``lacking``: hosts that lack images the VM names, with
    those images in words; ``unreached``: hosts that do not reach a storage domain its disks
    use, with the domain and why. Raises ``NoHostFits`` naming each host's obstacle."""
    settings = settings or PolicySettings()
    lacking = lacking or {}
    unreached = unreached or {}
    ledger = Ledger(cluster, settings)
    if vm.name in ledger.vms:
        raise InvalidRequest(f"VM {vm.name} already runs on {ledger.host_of[vm.name]}")
    fitting = [
        h
        for h in ledger.names
        if h not in lacking and h not in unreached and ledger.fits(vm, h, check_load=False)
    ]
    if not fitting:
        raise no_host_fits(vm, ledger, lacking, unreached)
    added = vm_load_m(vm)

    def key(host: str) -> tuple[bool, float, float, str]:
        after = utilisation(ledger.load_m[host] + added, ledger.hosts[host].cpus)
        free_after = ledger.free_memory(host) - vm.memory_mib
        if settings.policy is PlacementPolicy.POWER_SAVING:
            return (after > settings.high_utilisation, free_after, -after, host)
        return (after > settings.high_utilisation, after, -free_after, host)

    return min(fitting, key=key)


def no_host_fits(
    vm: VmDemand,
    ledger: Ledger,
    lacking: Mapping[str, str],
    unreached: Mapping[str, str] | None = None,
) -> NoHostFits:
    """The error for a VM that fits no host: every host's obstacle, in cluster order (a host
    down for maintenance or in standby says that first, then missing images, then limits)."""
    refusals: list[HostRefusal] = []
    for host in ledger.names:
        refusal = ledger.refusal(vm, host, check_load=False)
        down = refusal is not None and refusal.constraint in (
            Constraint.MAINTENANCE,
            Constraint.STANDBY,
        )
        if host in (unreached or {}) and not down:
            domain = (unreached or {})[host]
            refusal = HostRefusal(host, Constraint.STORAGE, f"{host} does not reach {domain}")
        elif host in lacking and not down:
            refusal = HostRefusal(host, Constraint.IMAGES, f"{host} lacks {lacking[host]}")
        if refusal is not None:
            refusals.append(refusal)
    return NoHostFits(no_host(vm, ledger, refusals), vm.name, tuple(refusals))
