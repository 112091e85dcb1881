"""``HostNetworks``: a host's libvirt networks of Corral's cluster networks and its NICs
(``host.networks``). The bridges of ``bridge`` and ``vxlan`` networks are the host agent's
work; libvirt only defines the network guests join on them."""

from __future__ import annotations

from corral.virt import _networks
from corral.virt._connection import ManagedConnection
from corral.virt._networks import NetworkDefinition, SeenNetwork, SeenNic

__all__ = ["HostNetworks", "NetworkDefinition", "SeenNetwork", "SeenNic"]


class HostNetworks:
    def __init__(self, conn: ManagedConnection, host: str) -> None:
        self._conn = conn
        self._host = host

    async def nics(self) -> list[SeenNic]:
        """The host's interfaces (libvirt's interface driver: read-only)."""
        return await self._conn.run(f"list the NICs of host {self._host}", _networks.list_nics)

    async def corral_networks(self) -> dict[str, SeenNetwork]:
        return await self._conn.run(
            f"list the cluster networks on host {self._host}", _networks.corral_networks
        )

    async def foreign_names(self) -> set[str]:
        """Names of libvirt networks on the host that are not Corral's."""
        return await self._conn.run(
            f"list the networks on host {self._host}", _networks.foreign_names
        )

    async def realise(self, want: NetworkDefinition) -> str | None:
        """Define and start ``want``; what :meth:`restore` needs to undo it (None: unchanged)."""
        return await self._conn.run(
            f"define network {want.name} on host {self._host}",
            lambda c: _networks.realise(c, want),
        )

    async def remove(self, name: str) -> str | None:
        return await self._conn.run(
            f"remove network {name} from host {self._host}", lambda c: _networks.remove(c, name)
        )

    async def restore(self, name: str, previous: str) -> None:
        await self._conn.run(
            f"restore network {name} on host {self._host}",
            lambda c: _networks.restore(c, name, previous),
        )

    async def ping(self) -> None:
        """A fresh round trip to libvirtd (after a change that may have cut the link)."""
        await self._conn.run(f"reach host {self._host}", lambda c: c.getLibVersion())
