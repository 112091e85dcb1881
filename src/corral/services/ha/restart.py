"""Bringing an HA VM of a fenced host up on another host, from its saved definition.

The host is chosen as evacuation chooses: connected, outside maintenance and standby, its
HA state ok, reaching every storage domain the VM's disks are on and every cluster network
its NICs use, with the most free memory (less what this recovery already put there).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from lxml import etree
from sqlalchemy.orm import Session

from corral import store
from corral.errors import Conflict, CorralError, InsufficientResources
from corral.model.ha import HostHaState
from corral.model.vm import EXECUTING
from corral.services._db import Db
from corral.services.events import Event, EventBus
from corral.services.hosts import HostService
from corral.services.migrations.preflight import QEMU_OVERHEAD_MIB
from corral.services.storage.domains import StorageDomains
from corral.store import ha as ha_store
from corral.store.tables import Vm
from corral.virt.migration import network_names

log = logging.getLogger(__name__)

NetworkGaps = Callable[[set[str]], Awaitable[dict[str, str]]]


def memory_mib(xml: str) -> int:
    root = etree.fromstring(xml.encode())
    node = root.find("memory")
    if node is None or not (node.text or "").strip().isdigit():
        return 0
    scale = {"KiB": 1 / 1024, "k": 1 / 1024, "MiB": 1, "M": 1, "GiB": 1024, "G": 1024}
    return int(int(node.text or "0") * scale.get(node.get("unit", "KiB"), 1 / 1024))


def disk_paths(xml: str) -> list[str]:
    root = etree.fromstring(xml.encode())
    paths = []
    for disk in root.iterfind("devices/disk[@device='disk']/source"):
        path = disk.get("file") or disk.get("dev") or disk.get("name")
        if path:
            paths.append(path)
    return paths


class HaRestart:
    def __init__(
        self, db: Db, hosts: HostService, storage: StorageDomains, bus: EventBus | None = None
    ) -> None:
        self._db = db
        self._hosts = hosts
        self._storage = storage
        self._bus = bus
        #: Cluster networks a host lacks, in words (set at start-up; None: not checked).
        self.network_gaps: NetworkGaps | None = None

    async def restart(self, row: Vm, failed: str, placed: dict[str, int]) -> str:
        """Bring ``row`` up away from ``failed``; the host it runs on now. ``placed``: MiB
        this recovery already put on each host (updated). CorralError saying why not."""
        saved = await self._db.read(lambda s: ha_store.definition(s, row.uuid))
        if saved is None:
            raise Conflict(
                f"no saved definition of VM {row.name}: HA was switched on while Corral "
                "could not read it; it cannot be restarted elsewhere"
            )
        running, defined = await self._elsewhere(row.uuid, failed)
        if running is not None:
            await self._moved(row, failed, running, "found running")
            return running
        need = memory_mib(saved.xml) + QEMU_OVERHEAD_MIB
        refused: list[str] = []
        candidates = await self._candidates(failed, saved.xml, need, placed, refused)
        # A host that has the domain already (a recovery interrupted after its define, maybe
        # with its start still under way there) is tried first: never a second host.
        candidates.sort(key=lambda name: name not in defined)
        for name in candidates:
            host = self._hosts.get(name)
            try:
                try:
                    await host.define_saved(saved.xml)
                except CorralError as exc:
                    refused.append(f"{name}: {exc.message}")
                    continue
                try:
                    await host.start(row.uuid)
                except CorralError as exc:
                    if await self._runs_on(name, row.uuid):
                        pass  # started meanwhile (the interrupted recovery's own start)
                    else:
                        refused.append(f"{name}: {exc.message}")
                        await host.forget_stale(row.uuid)
                        continue
            except CorralError as exc:  # the clean-up of a failed start
                log.warning("HA: cleaning up VM %s on %s: %s", row.name, name, exc.message)
                continue
            placed[name] = placed.get(name, 0) + need
            await self._moved(row, failed, name, "restarted")
            return name
        raise InsufficientResources(
            f"no host can restart VM {row.name} ({need} MiB with QEMU's overhead): "
            + ("; ".join(refused) or "no other connected host outside maintenance")
            + "; Corral retries when a host returns or frees memory"
        )

    async def _elsewhere(self, uuid: str, failed: str) -> tuple[str | None, set[str]]:
        """The host (not ``failed``) where the domain runs already (a recovery interrupted
        after its start, before its row moved), and the hosts that have it defined."""
        defined: set[str] = set()
        for host in self._hosts.all():
            if host.name == failed or not host.connected:
                continue
            try:
                record = await host.get_domain(uuid)
            except CorralError:  # NotFound among them
                continue
            if record.state in EXECUTING:
                return host.name, defined
            defined.add(host.name)
        return None, defined

    async def _runs_on(self, name: str, uuid: str) -> bool:
        try:
            return (await self._hosts.get(name).get_domain(uuid)).state in EXECUTING
        except CorralError:
            return False

    async def _candidates(
        self, failed: str, xml: str, need: int, placed: dict[str, int], refused: list[str]
    ) -> list[str]:
        networks = set(network_names(xml))
        gaps = await self.network_gaps(networks) if self.network_gaps and networks else {}
        domains = set((await self._storage.holders(disk_paths(xml))).values())
        rows = {h.name: h for h in await self._db.read(store.list_hosts)}
        found: list[tuple[int, str]] = []
        for host in self._hosts.all():
            name = host.name
            row = rows.get(name)
            if name == failed or row is None or not host.connected:
                continue
            if row.maintenance or row.standby or row.ha_state != HostHaState.OK.value:
                refused.append(f"{name} is in maintenance, on standby or not ok for HA")
                continue
            if name in gaps:
                refused.append(f"{name} lacks {gaps[name]}")
                continue
            reached, _why = await self._storage.host_reach(name)
            if not domains <= reached:
                refused.append(f"{name} does not reach {', '.join(sorted(domains - reached))}")
                continue
            try:
                free = (await host.capabilities()).free_memory_mib - placed.get(name, 0)
            except CorralError as exc:
                refused.append(f"{name}: {exc.message}")
                continue
            if free < need:
                refused.append(f"{name} has {free} MiB free")
                continue
            found.append((free, name))
        return [name for _free, name in sorted(found, key=lambda f: (-f[0], f[1]))]

    async def _moved(self, row: Vm, failed: str, to: str, how: str) -> None:
        name = row.name

        def move(session: Session) -> None:
            store.update_vm(session, name, host=to)
            store.clear_vm_missing(session, name)
            ha_store.set_vm_waiting(session, row.uuid, None)

        await self._db(move)
        log.warning("HA: VM %s %s on host %s (its host %s is fenced)", name, how, to, failed)
        if self._bus is not None:
            self._bus.publish(
                Event("vm", "moved", {"host": to, "from": failed, "uuid": row.uuid, "name": name})
            )
