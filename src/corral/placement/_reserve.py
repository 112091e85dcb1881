"""Hosts in reserve: the first ``hosts_in_reserve`` empty running hosts, by a fixed key.

The reserve is recomputed from the ledger whenever it is needed rather than fixed once: a host
that a plan empties may well be the better reserve, and a re-plan on the plan's result must
pick exactly the hosts the plan picked (it sees only the empty hosts, not their history).
"""

from __future__ import annotations

from corral.placement.feasibility import Ledger


def reserve_key(ledger: Ledger, host: str) -> tuple[float, int, str]:
    """Reserve hosts idle, so the lowest idle power first; then the most memory."""
    return (ledger.hosts[host].power.idle_w, -ledger.hosts[host].memory_mib, host)


def current_reserve(ledger: Ledger) -> list[str]:
    """The empty running hosts that make up the reserve now (possibly fewer than wanted)."""
    empty = [h for h in ledger.up_hosts() if ledger.is_empty(h)]
    empty.sort(key=lambda h: reserve_key(ledger, h))
    return empty[: ledger.settings.hosts_in_reserve]
