"""Where a VM's screen comes from: one small interface for every consumer of VNC.

The console proxy, console automation and screen matching ask ``VmScreenSource`` for a VNC
session; how it is reached depends on the host:

* local hosts (libvirt over a UNIX socket): libvirt's ``openGraphicsFD`` hands over a socket to
  QEMU's VNC server (no VNC port anywhere, no VNC authentication);
* remote hosts (enrolled, ``qemu+tls://``): QEMU's VNC server listens on the host's address and
  speaks VeNCrypt X509None only; Corral connects with its console-proxy certificate, the only
  client certificate the hosts' VNC servers trust.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Collection

from corral.errors import Conflict, HostError
from corral.model.vm import VmState
from corral.pki import ClusterPki
from corral.rfb import RFBClient, Upstream, open_upstream_socket, open_upstream_tcp
from corral.services.vms.inventory import VmInventory
from corral.virt import DomainRecord, LibvirtHost
from corral.virt.domain_xml import Domain

#: Bound on opening a VNC session (libvirt hand-over or TCP + TLS, plus the RFB handshake).
CONNECT_TIMEOUT_S = 10.0
#: A paused VM's screen can still be seen (it just does not change).
VIEWING_STATES = (VmState.RUNNING, VmState.PAUSED)


def require_screen(record: DomainRecord, *, vnc: bool) -> None:
    """Conflict unless the domain has a screen: a video card (for a screenshot) and, with
    ``vnc``, a VNC server (for a console). s390x VMs have neither: libvirt's own refusal
    ("no screens to take screenshot from") names no VM and no way out."""
    devices = Domain.from_xml(record.xml).devices
    if devices.videos and (devices.graphics or not vnc):
        return
    why = "it has no graphics device"
    if record.arch == "s390x":
        why = "s390x VMs get no graphics device"
    raise Conflict(
        f"VM {record.name!r} has no screen ({why}): use its serial console instead "
        f"(`corral vm console {record.name}`, or its log: `corral vm log {record.name}`)"
    )


class VmScreenSource:
    def __init__(self, inventory: VmInventory, pki: ClusterPki) -> None:
        self._inventory = inventory
        self._pki = pki

    async def _locate(
        self, name: str, states: Collection[VmState], purpose: str
    ) -> tuple[LibvirtHost, str]:
        _row, host, record = await self._inventory.record(name)
        require_screen(record, vnc=True)
        if record.state not in states:
            raise Conflict(f"VM {name!r} is {record.state.value}: start it to {purpose}")
        return host, record.uuid

    async def _remote(self, host: LibvirtHost, uuid: str, name: str) -> tuple[str, int]:
        endpoint = await host.consoles.vnc_endpoint(uuid)
        if endpoint is None:
            raise HostError(
                f"VM {name!r} on host {host.name!r} has no VNC server on the network: it was "
                "defined before the host was enrolled; shut it down and start it again"
            )
        return endpoint

    async def check_viewable(self, name: str) -> None:
        """Conflict unless the VM's screen can be opened now (before issuing a ticket)."""
        await self._locate(name, VIEWING_STATES, "open its console")

    async def client(self, name: str, states: Collection[VmState], purpose: str) -> RFBClient:
        """A full VNC client session (framebuffer decoded), e.g. to type or match images."""
        host, uuid = await self._locate(name, states, purpose)
        if host.passes_fds:
            sock = await host.consoles.open_vnc(uuid)
            return await RFBClient.connect_socket(sock, timeout=CONNECT_TIMEOUT_S)
        address, port = await self._remote(host, uuid, name)
        return await RFBClient.connect_tls_vencrypt(
            address,
            port,
            await asyncio.to_thread(self._pki.console_client_context),
            timeout=CONNECT_TIMEOUT_S,
        )

    async def upstream(self, name: str, purpose: str = "open its console") -> Upstream:
        """A connection past the server's handshake (and its TLS), for relaying to a viewer."""
        host, uuid = await self._locate(name, VIEWING_STATES, purpose)
        if host.passes_fds:
            sock: socket.socket = await host.consoles.open_vnc(uuid)
            return await open_upstream_socket(sock, timeout=CONNECT_TIMEOUT_S)
        address, port = await self._remote(host, uuid, name)
        context = await asyncio.to_thread(self._pki.console_client_context)
        return await open_upstream_tcp(
            address,
            port,
            timeout=CONNECT_TIMEOUT_S,
            ssl_context=context,
            server_hostname=address,
        )
