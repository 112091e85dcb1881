"""Estimated electrical power of hosts and clusters (``PowerModel``: linear in CPU use).

Estimates, not measurements: a plan compares the cluster before and after with the same model,
so the figure that matters is the difference. Under a linear model moving load between hosts of
the same model changes nothing; the savings come from the idle power of hosts put in standby.
"""

from __future__ import annotations

from corral.model.placement import HostMode, PowerModel
from corral.placement.feasibility import Ledger


def host_watts(power: PowerModel, mode: HostMode, utilisation: float) -> float:
    """Watts drawn by one host in ``mode`` at CPU ``utilisation`` (clipped to 0..1)."""
    if mode is HostMode.STANDBY:
        return power.standby_w
    busy = min(max(utilisation, 0.0), 1.0)
    return power.idle_w + (power.max_w - power.idle_w) * busy


def ledger_watts(ledger: Ledger) -> float:
    """Watts drawn by every host of ``ledger`` (maintenance hosts are on, so they count)."""
    return sum(
        host_watts(ledger.hosts[h].power, ledger.mode[h], ledger.util(h)) for h in ledger.names
    )
