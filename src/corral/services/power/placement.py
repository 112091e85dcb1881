"""Where ``vm create`` without ``--host`` puts a VM: ``corral.placement.choose_host`` on the
cluster as it is (hosts in maintenance, standby or unreachable excluded), with the cluster's
placement policy. ``NoHostFits`` (409) says, host by host, why none can take it, and what
would help."""

from __future__ import annotations

from collections.abc import Mapping

from corral.errors import InvalidRequest
from corral.model.placement import VmDemand
from corral.model.vm import VmSpec
from corral.placement import choose_host
from corral.services.migrations.preflight import QEMU_OVERHEAD_MIB
from corral.services.power.plan import PowerPlanner


class InitialPlacement:
    def __init__(self, planner: PowerPlanner) -> None:
        self._planner = planner

    async def choose(
        self, spec: VmSpec, lacking: Mapping[str, str], unreached: Mapping[str, str]
    ) -> str | None:
        """The host for a new VM, among those that lack none of the images it names
        (``lacking``: host -> those images in words) and reach every storage domain its disks
        use (``unreached``: host -> the domain and why not); None when the planner has no
        opinion (the name is taken: creation refuses that with its own message)."""
        situation = await self._planner.situation(consolidation=False)
        demand = VmDemand(
            name=spec.name,
            vcpus=spec.vcpus,
            memory_mib=spec.memory_mib + QEMU_OVERHEAD_MIB,
            overhead_mib=QEMU_OVERHEAD_MIB,
        )
        try:
            cluster = situation.snapshot.cluster
            return choose_host(
                demand, cluster, situation.settings, lacking=lacking, unreached=unreached
            )
        except InvalidRequest:
            return None
