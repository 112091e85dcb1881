"""``DomainPools``: the directory pools of storage domains on one host (``host.domain_pools``).

Each is a :class:`PoolStorage` that is never built (the directory is the administrator's
mount), kept per pool name; :meth:`DomainPools.forget` stops and undefines one again.
"""

from __future__ import annotations

from corral.virt import _domain_pools
from corral.virt._connection import ManagedConnection
from corral.virt.storage import PoolStorage

#: Every storage domain's pool is named this plus the domain's name.
POOL_PREFIX = "corral-sd-"


class DomainPools:
    def __init__(self, conn: ManagedConnection) -> None:
        self._conn = conn
        self._pools: dict[str, PoolStorage] = {}

    def pool(self, name: str, path: str) -> PoolStorage:
        """The pool ``name`` at ``path`` (defined and started on first use)."""
        current = self._pools.get(name)
        if current is None or current.pool_dir != path:
            current = PoolStorage(self._conn, name, path, build=False)
            self._pools[name] = current
        return current

    async def forget(self, name: str) -> bool:
        """Stop and undefine pool ``name`` (its files stay); False when it was not defined."""
        cached = self._pools.pop(name, None)
        if cached is not None:
            cached.forget()
        return await self._conn.run(
            f"undefine storage pool {name}", lambda c: _domain_pools.undefine(c, name)
        )

    async def delete_volume_at(self, path: str) -> str | None:
        """Delete the domain volume at ``path`` (a VM's disk being deleted with it) unless a
        linked clone stands on it; None when deleted, else why it was kept."""
        return await self._conn.run(
            f"delete volume {path}",
            lambda c: _domain_pools.delete_domain_volume(c, path, POOL_PREFIX),
        )

    async def names(self) -> list[str]:
        """Every storage domain pool defined on the host (``POOL_PREFIX…``)."""
        return await self._conn.run(
            "list the storage domain pools", lambda c: _domain_pools.names(c, POOL_PREFIX)
        )

    def forget_handles(self) -> None:
        """Drop every cached pool handle (the connection closes)."""
        for pool in self._pools.values():
            pool.forget()
