"""Power-aware placement: pure planning, no I/O (the executor lives in ``corral.services``).

- ``choose_host``: where a new VM starts (``power_saving`` packs, ``evenly_distributed``
  spreads); ``NoHostFits`` says, host by host, which limit failed.
- ``plan_consolidation``: relieve over-used hosts (waking hosts in standby if needed), empty
  under-used ones into the others and put them in standby, keep the hosts in reserve.
- ``apply_plan``/``plan_is_stale``/``stale_reasons``: what a plan does, and whether it still
  fits the cluster as it is now.
- ``sustained_load``: the window logic over utilisation samples; ``host_watts``: power model.
"""

from corral.placement.consolidation import plan_consolidation
from corral.placement.feasibility import Constraint
from corral.placement.plans import apply_plan, plan_is_stale, stale_reasons
from corral.placement.policies import choose_host
from corral.placement.power_model import host_watts
from corral.placement.window import LoadBand, SustainedLoad, sustained_load

__all__ = [
    "Constraint",
    "LoadBand",
    "SustainedLoad",
    "apply_plan",
    "choose_host",
    "host_watts",
    "plan_consolidation",
    "plan_is_stale",
    "stale_reasons",
    "sustained_load",
]
