"""Where a VM's screen comes from: one small interface for every consumer of VNC.

The console proxy, console automation and screen matching ask ``VmScreenSource`` for a VNC
session; how it is reached depends on the host. Today: local hosts hand over a socket with
libvirt's ``openGraphicsFD`` (no VNC port anywhere). Remote hosts (VNC over TLS, VeNCrypt
X509None with Corral's console certificate) plug in here, behind the same two methods.
"""

from __future__ import annotations

import socket
from collections.abc import Collection

from corral.errors import Conflict
from corral.model.vm import VmState
from corral.rfb import RFBClient, Upstream, open_upstream_socket
from corral.services.vms.inventory import VmInventory

#: Bound on opening a VNC session (libvirt hand-over plus the RFB handshake).
CONNECT_TIMEOUT_S = 10.0
#: A paused VM's screen can still be seen (it just does not change).
VIEWING_STATES = (VmState.RUNNING, VmState.PAUSED)


class VmScreenSource:
    def __init__(self, inventory: VmInventory) -> None:
        self._inventory = inventory

    async def _socket_for(
        self, name: str, states: Collection[VmState], purpose: str
    ) -> socket.socket:
        _row, host, record = await self._inventory.record(name)
        if record.state not in states:
            raise Conflict(f"VM {name!r} is {record.state.value}: start it to {purpose}")
        return await host.open_vnc(record.uuid)

    async def check_viewable(self, name: str) -> None:
        """Conflict unless the VM's screen can be opened now (before issuing a ticket)."""
        _row, _host, record = await self._inventory.record(name)
        if record.state not in VIEWING_STATES:
            raise Conflict(f"VM {name!r} is {record.state.value}: start it to open its console")

    async def client(self, name: str, states: Collection[VmState], purpose: str) -> RFBClient:
        """A full VNC client session (framebuffer decoded), e.g. to type or match images."""
        sock = await self._socket_for(name, states, purpose)
        return await RFBClient.connect_socket(sock, timeout=CONNECT_TIMEOUT_S)

    async def upstream(self, name: str, purpose: str = "open its console") -> Upstream:
        """A connection past the server's handshake, for relaying to a viewer."""
        sock = await self._socket_for(name, VIEWING_STATES, purpose)
        return await open_upstream_socket(sock, timeout=CONNECT_TIMEOUT_S)
