"""``IscsiPools``: the libvirt ``iscsi-direct`` pools of iscsi storage domains on one host
(``host.iscsi_pools``): log in to a target (libiscsi inside libvirtd, no kernel initiator),
list its LUNs, log out again. See ``_iscsi_pools`` for libvirt's quirks."""

from __future__ import annotations

from corral.virt import _iscsi_pools
from corral.virt._connection import ManagedConnection
from corral.virt._iscsi_pools import IscsiTarget, Lun

__all__ = ["IscsiPools", "IscsiTarget", "Lun"]


class IscsiPools:
    def __init__(self, conn: ManagedConnection) -> None:
        self._conn = conn

    async def ensure(self, name: str, where: IscsiTarget) -> int:
        """Pool ``name`` logged in to ``where`` (defined, started, autostarted; undefined
        again if the login fails); the target's capacity in bytes."""
        return await self._conn.run(
            f"log in to iSCSI target {where.target} at {where.host}:{where.port}",
            lambda c: _iscsi_pools.size(_iscsi_pools.ensure(c, name, where)),
        )

    async def luns(self, name: str, where: IscsiTarget) -> list[Lun]:
        return await self._conn.run(
            f"list the LUNs of iSCSI target {where.target}",
            lambda c: _iscsi_pools.luns(_iscsi_pools.ensure(c, name, where)),
        )

    async def forget(self, name: str) -> bool:
        """Stop and undefine pool ``name`` (the target is not touched); False if absent."""
        return await self._conn.run(
            f"undefine storage pool {name}", lambda c: _iscsi_pools.undefine(c, name)
        )
