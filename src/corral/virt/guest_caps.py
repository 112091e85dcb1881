"""``GuestCapabilities``: what one host can run (``host.guests``) — guest architectures,
machine types and accelerators from the capabilities XML, and per (architecture, accelerator,
machine) the domain capabilities (vCPU limit, CPU models, firmware). Read once per connection:
``forget()`` runs when the connection comes or goes (the daemon may have other emulators now)
and when a create is refused for a missing architecture (packages may have been installed)."""

from __future__ import annotations

from corral.model.host import GuestArchInfo
from corral.model.vm import Accelerator
from corral.virt import _hostcaps
from corral.virt._connection import ManagedConnection
from corral.virt._hostcaps import DomainCaps, GuestArch, GuestCatalog


class GuestCapabilities:
    def __init__(self, conn: ManagedConnection, host: str) -> None:
        self._conn = conn
        self._host = host
        self._catalog: GuestCatalog | None = None
        self._domain_caps: dict[tuple[str, Accelerator, str | None], DomainCaps | None] = {}

    @property
    def known(self) -> GuestCatalog | None:
        """The catalog if it was read on this connection (for synchronous callers)."""
        return self._catalog

    def forget(self) -> None:
        self._catalog = None
        self._domain_caps.clear()

    async def catalog(self) -> GuestCatalog:
        if self._catalog is None:
            self._catalog = await self._conn.run(
                f"read the guest architectures of host {self._host}", _hostcaps.read_catalog
            )
        return self._catalog

    async def arch(self, arch: str) -> GuestArch | None:
        return (await self.catalog()).guests.get(arch)

    async def domain_caps(
        self, arch: str, accelerator: Accelerator, machine: str | None
    ) -> DomainCaps | None:
        """None where libvirt cannot say."""
        key = (arch, accelerator, machine)
        if key not in self._domain_caps:
            self._domain_caps[key] = await self._conn.run(
                f"read the domain capabilities of {arch} {machine or ''} guests on {self._host}",
                lambda c: _hostcaps.read_domain_caps(c, arch, accelerator, machine),
            )
        return self._domain_caps[key]

    async def details(self) -> list[GuestArchInfo]:
        """Per architecture: machine types, max vCPUs, CPU models, nesting (``host show``)."""
        catalog = await self.catalog()
        details = []
        for arch, guest in sorted(catalog.guests.items()):
            machine = _hostcaps.default_machine(guest)
            caps = {a: await self.domain_caps(arch, a, machine) for a in guest.accelerators}
            details.append(_hostcaps.guest_info(guest, catalog, caps))
        return details
