"""Cluster networks (``corral network …``) and host NIC labels: intent in the store, realised
on each host through libvirt (``host.networks``) and, for bridges and VXLAN, Corral's host
agent."""

from corral.services.networks.apply import AgentCall
from corral.services.networks.nics import HostNics
from corral.services.networks.realise import NetworkRealiser
from corral.services.networks.service import APPLY_KIND, NetworkService

__all__ = ["APPLY_KIND", "AgentCall", "HostNics", "NetworkRealiser", "NetworkService"]
