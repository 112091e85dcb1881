"""``DomainChanges``: the async face of :mod:`corral.virt._edit` for one host (``host.changes``).

Resizing a running guest, plugging devices in and out, and rewriting a domain's definition.
libvirt refusing such a change as unsuitable for the domain (``VIR_ERR_INVALID_ARG``,
``CONFIG_UNSUPPORTED``) is a Conflict here: the request was well formed, this VM on this host
cannot take it, and it stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable

import libvirt

from corral.errors import Conflict, InvalidRequest
from corral.virt import _edit
from corral.virt._connection import ManagedConnection
from corral.virt._lookup import lookup


class DomainChanges:
    def __init__(self, conn: ManagedConnection) -> None:
        self._conn = conn

    async def _run(self, what: str, job: Callable[[libvirt.virConnect], object]) -> None:
        try:
            await self._conn.run(what, job)
        except InvalidRequest as exc:
            raise Conflict(f"{exc.message}: the VM stays as it was") from None

    async def redefine(self, uuid: str, rewrite: _edit.Rewrite, what: str) -> None:
        """Rewrite the domain's persistent definition (a running one gets it at next start)."""
        await self._run(f"{what} of domain {uuid}",
                        lambda c: _edit.redefine(c, lookup(c, uuid), rewrite))  # fmt: skip

    async def set_vcpus(self, uuid: str, count: int) -> None:
        """Plug vCPUs in or out of a running domain (and its definition)."""
        await self._run(f"set {count} vCPUs in domain {uuid}",
                        lambda c: _edit.set_vcpus(lookup(c, uuid), count))  # fmt: skip

    async def set_balloon(self, uuid: str, mib: int) -> None:
        """Ask a running domain's balloon for ``mib`` MiB (the guest may not follow)."""
        await self._run(f"set the balloon of domain {uuid} to {mib} MiB",
                        lambda c: _edit.set_balloon(lookup(c, uuid), mib))  # fmt: skip

    async def guest_memory_mib(self, uuid: str) -> int:
        """The memory a running domain's guest has now."""
        return await self._conn.run(f"read the memory of domain {uuid}",
                                    lambda c: _edit.guest_memory_mib(lookup(c, uuid)))  # fmt: skip

    async def keep_memory(self, uuid: str, mib: int) -> None:
        """Give a domain ``mib`` MiB from its next start on (``<currentMemory>``)."""
        await self._run(f"set {mib} MiB of memory in the definition of domain {uuid}",
                        lambda c: _edit.keep_memory(lookup(c, uuid), mib))  # fmt: skip

    async def attach_device(self, uuid: str, device_xml: str, *, live: bool) -> None:
        """Add a device to the definition, and to the running guest with ``live``."""
        await self._run(f"attach a device to domain {uuid}",
                        lambda c: _edit.attach(lookup(c, uuid), device_xml, live))  # fmt: skip

    async def detach_device(
        self, uuid: str, device_xml: str, *, live: bool, config: bool = True
    ) -> None:
        """Remove a device from the running guest (``live``) and/or the definition."""
        await self._run(
            f"detach a device from domain {uuid}",
            lambda c: _edit.detach(lookup(c, uuid), device_xml, live=live, config=config),
        )

    async def set_disk_name(self, uuid: str, target: str, name: str | None, *, live: bool) -> None:
        """Record Corral's name of the disk at ``target`` (None: forget it)."""
        await self._run(
            f"name the disk {target} of domain {uuid}",
            lambda c: _edit.set_disk_name(lookup(c, uuid), target, name, live),
        )
