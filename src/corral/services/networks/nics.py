"""Host NICs and their labels: bridge networks name a label (``lan``), each host says which
of its NICs carries it (NIC names differ between hosts)."""

from __future__ import annotations

from collections.abc import Callable

from corral.errors import NotFound
from corral.model.network import HostNic, NicLabelInfo
from corral.services._db import Db
from corral.services.hosts import HostService
from corral.store import networks as net_store


class HostNics:
    def __init__(self, db: Db, hosts: HostService) -> None:
        self._db = db
        self._hosts = hosts
        #: Told the host whose labels changed (its bridge networks are applied again).
        self.changed: Callable[[str], None] = lambda _host: None

    async def list_nics(self, host_name: str) -> list[HostNic]:
        """The host's NICs as libvirt lists them, with their labels (a labelled NIC the host
        does not list is shown inactive: it may have been renamed or removed)."""
        host = self._hosts.connected(host_name)
        labels = await self._db(lambda s: net_store.nic_labels(s, host_name))
        by_nic: dict[str, list[str]] = {}
        for item in labels:
            by_nic.setdefault(item.nic, []).append(item.label)
        nics = [
            HostNic(name=n.name, mac=n.mac, active=n.active, labels=by_nic.pop(n.name, []))
            for n in await host.networks.nics()
        ]
        nics += [HostNic(name=nic, active=False, labels=ls) for nic, ls in by_nic.items()]
        return nics

    async def label(self, host_name: str, nic: str, label: str) -> NicLabelInfo:
        host = self._hosts.connected(host_name)
        names = [n.name for n in await host.networks.nics()]
        if nic not in names:
            raise NotFound(
                f"host {host_name} has no NIC {nic!r}; it has {', '.join(names) or 'none'}"
            )
        await self._db(lambda s: net_store.label_nic(s, host_name, nic, label))
        self.changed(host_name)
        return NicLabelInfo(host=host_name, nic=nic, label=label)

    async def unlabel(self, host_name: str, nic: str, label: str) -> None:
        self._hosts.get(host_name)
        await self._db(lambda s: net_store.unlabel_nic(s, host_name, nic, label))
        self.changed(host_name)
