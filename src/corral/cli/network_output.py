"""Tables of ``corral network …`` and ``corral host nics``."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from corral.cli.tables import details as _details
from corral.cli.tables import row as _row
from corral.cli.tables import table as _table
from corral.cli.tables import when
from corral.model.network import HostNic, NetworkInfo, NetworkOnHost


def _what(net: NetworkInfo) -> str:
    if net.uplink is not None:
        vlan = f" vlan {net.vlan}" if net.vlan else ""
        return f"uplink {net.uplink}{vlan}"
    if net.vni is not None:
        return f"vni {net.vni}"
    return "-"


def _states(hosts: Iterable[NetworkOnHost]) -> str:
    return ", ".join(f"{h.host} {h.state.value}" for h in hosts) or "-"


def network_table(networks: Iterable[NetworkInfo]) -> Table:
    table = _table("NAME", "KIND", "CARRIER", "REQUIRED", "HOSTS")
    for net in networks:
        _row(
            table,
            net.name,
            net.kind.value,
            _what(net),
            "yes" if net.required else "no",
            _states(net.hosts),
        )
    return table


def network_details(net: NetworkInfo) -> Table:
    rows = [
        ("Name", net.name),
        ("Kind", net.kind.value),
        ("Carrier", _what(net)),
        ("Bridge", net.bridge),
        ("Required", "yes" if net.required else "no"),
        ("Description", net.description or "-"),
        ("Created", when(net.created_at)),
    ]
    for state in net.hosts:
        reason = f": {state.reason}" if state.reason else ""
        rows.append((f"Host {state.host}", f"{state.state.value}{reason}"))
    return _details(rows)


def nic_table(nics: Iterable[HostNic]) -> Table:
    table = _table("NIC", "MAC", "ACTIVE", "LABELS")
    for nic in nics:
        active = "yes" if nic.active else "no"
        _row(table, nic.name, nic.mac or "-", active, ", ".join(nic.labels) or "-")
    return table
