"""``DiskMoves``: the async face of :mod:`corral.virt._blockcopy` for one host
(``host.disk_moves``): block copy of a running domain's disk, volume clones for shut-off ones,
and pointing a definition at the new volume."""

from __future__ import annotations

import libvirt

from corral.model.storage_domain import DiskSource
from corral.virt import _blockcopy
from corral.virt._blockcopy import CopyProgress, DiskFacts
from corral.virt._connection import ManagedConnection
from corral.virt._lookup import lookup

_PERSISTENT_XML = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE

__all__ = ["CopyProgress", "DiskFacts", "DiskMoves"]


class DiskMoves:
    def __init__(self, conn: ManagedConnection, host_name: str) -> None:
        self._conn = conn
        self._host = host_name

    async def disk_facts(self, uuid: str, target: str) -> DiskFacts:
        """Virtual size, allocation and format of the domain's disk ``target``."""
        return await self._conn.run(
            f"read the size of disk {target} of domain {uuid}",
            lambda c: _blockcopy.disk_facts(lookup(c, uuid), target),
        )

    async def start_copy(
        self, uuid: str, target: str, dest: DiskSource, *, bandwidth: int | None = None
    ) -> None:
        """Start mirroring disk ``target`` of the running domain into ``dest`` (exists);
        ``bandwidth`` caps the copy in bytes/s."""
        await self._conn.run(
            f"start copying disk {target} of domain {uuid}",
            lambda c: _blockcopy.start_copy(lookup(c, uuid), target, dest, bandwidth),
        )

    async def copy_progress(self, uuid: str, target: str) -> CopyProgress | None:
        return await self._conn.run(
            f"read the copy job of disk {target} of domain {uuid}",
            lambda c: _blockcopy.copy_progress(lookup(c, uuid), target),
        )

    async def pivot(self, uuid: str, target: str) -> None:
        await self._conn.run(
            f"switch disk {target} of domain {uuid} to its copy",
            lambda c: _blockcopy.pivot(lookup(c, uuid), target),
        )

    async def abort_copy(self, uuid: str, target: str) -> None:
        await self._conn.run(
            f"stop copying disk {target} of domain {uuid}",
            lambda c: _blockcopy.abort(lookup(c, uuid), target),
        )

    async def clone_volume(self, source_path: str, dest_path: str) -> None:
        """Fill the blank volume at ``dest_path`` with the volume at ``source_path`` (both in
        pools of this host); unbounded: it takes as long as the data takes."""
        await self._conn.run(
            f"copy {source_path} to {dest_path} on host {self._host}",
            lambda c: _blockcopy.clone_into(c, source_path, dest_path),
            bounded=False,
        )

    async def set_disk_source(self, uuid: str, target: str, source: DiskSource) -> None:
        """Point disk ``target`` of the domain's persistent definition at ``source`` (a
        running domain gets it at its next start; after a pivot it already runs on it)."""

        def job(conn: libvirt.virConnect) -> None:
            current = lookup(conn, uuid).XMLDesc(_PERSISTENT_XML)
            conn.defineXML(_blockcopy.with_disk_source(current, target, source))

        await self._conn.run(f"point disk {target} of domain {uuid} at its new volume", job)
