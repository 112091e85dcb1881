"""``corral network …``: cluster networks declared once, realised on every host.

Create, change and delete store the intent, then apply it to every connected host as a task
(progress per host); a host that (re)connects gets the cluster's networks applied at once
(``Reconciler.on_host_connected``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from corral.errors import Conflict, CorralError, HostError
from corral.model.network import (
    NetworkCreate,
    NetworkEdit,
    NetworkHostState,
    NetworkInfo,
    NetworkKind,
    create_fields,
)
from corral.model.task import TaskInfo
from corral.services._db import Db
from corral.services.audit import AuditService
from corral.services.hosts import HostService
from corral.services.leases import Leases
from corral.services.networks.drift import agent_bridges, checked_states
from corral.services.networks.realise import APPLIED, REMOVED, NetworkRealiser
from corral.services.principal import Principal
from corral.services.tasks import TaskContext, TaskService
from corral.services.vms.inventory import VmInventory
from corral.store import networks as net_store
from corral.virt import LibvirtHost

log = logging.getLogger(__name__)


def _write_states(
    session: Session, host: str, states: dict[str, tuple[NetworkHostState, str | None]]
) -> None:
    for net, (state, why) in states.items():
        net_store.set_host_state(session, net, host, state, why)


APPLY_KIND = "network.apply"
#: The lease of the periodic drift check (services/leases.py).
DRIFT_LEASE = "network-drift"


class NetworkService:
    def __init__(
        self,
        db: Db,
        hosts: HostService,
        tasks: TaskService,
        audit: AuditService,
        inventory: VmInventory,
        realiser: NetworkRealiser,
    ) -> None:
        self._db = db
        self._hosts = hosts
        self._tasks = tasks
        self._audit = audit
        self._inventory = inventory
        self.realiser = realiser
        self._jobs: set[asyncio.Task[Any]] = set()
        #: Several instances: the drift check runs where its lease is held (None: one
        #: instance, always here).
        self.leases: Leases | None = None

    # -- reading -----------------------------------------------------------------------------
    async def list_networks(self) -> list[NetworkInfo]:
        def read(session: Session) -> list[NetworkInfo]:
            return [net_store.network_info(session, r) for r in net_store.list_networks(session)]

        return await self._db.read(read)

    async def get(self, name: str) -> NetworkInfo:
        return await self._db(lambda s: net_store.network_info(s, net_store.get_network(s, name)))

    # -- changes -----------------------------------------------------------------------------
    async def create(self, principal: Principal, request: NetworkCreate) -> TaskInfo:
        uplink, _vni, _vlan = create_fields(request)
        if uplink is not None:
            await self._check_uplink(uplink)
        await self._db(lambda s: net_store.add_network(s, request))
        await self._mark_pending(request.name)
        return await self._apply_task(principal, "network.create", request.name)

    async def edit(self, principal: Principal, name: str, edit: NetworkEdit) -> TaskInfo:
        current = await self.get(name)
        if edit.uplink is not None:
            if current.kind is not NetworkKind.BRIDGE:
                raise Conflict(f"network {name} is {current.kind.value}: only bridge "
                               "networks have an uplink")  # fmt: skip
            await self._check_uplink(edit.uplink)
        await self._db(
            lambda s: net_store.update_network(
                s, name, required=edit.required, description=edit.description, uplink=edit.uplink
            )
        )
        if edit.uplink is not None and edit.uplink != current.uplink:
            await self._mark_pending(name)
        return await self._apply_task(principal, "network.edit", name)

    async def apply(self, principal: Principal, name: str) -> TaskInfo:
        """Apply the network to every connected host again (after drift, or a failure whose
        cause was fixed), as a task."""
        await self.get(name)
        return await self._apply_task(principal, APPLY_KIND, name)

    async def delete(self, principal: Principal, name: str) -> TaskInfo:
        await self.get(name)
        users = sorted(
            vm.name
            for vm in await self._inventory.list_vms()
            if any(nic.network == name for nic in vm.nics)
        )
        if users:
            raise Conflict(
                f"network {name} is used by the NICs of VM(s) {', '.join(users)}: unplug them "
                "(`corral vm nic detach`) or delete the VMs first"
            )
        await self._db(lambda s: net_store.delete_network(s, name))
        return await self._apply_task(principal, "network.delete", name, gone=True)

    async def _check_uplink(self, label: str) -> None:
        labels = await self._db(net_store.nic_labels)
        if not any(item.label == label for item in labels):
            raise Conflict(
                f"no host has a NIC labelled {label!r}: label the uplink NIC on each host "
                f"first (`corral host label-nic HOST NIC {label}`)"
            )

    async def _mark_pending(self, name: str) -> None:
        hosts = [h.name for h in self._hosts.all()]

        def write(session: Session) -> None:
            for host in hosts:
                net_store.set_host_state(session, name, host, NetworkHostState.PENDING)

        await self._db(write)

    async def _apply_task(
        self, principal: Principal, action: str, name: str, *, gone: bool = False
    ) -> TaskInfo:
        body = self._apply_body(principal.user, name, gone=gone)
        return await self._tasks.start(action, name, principal, body, "queued")

    async def resume_apply(self, task: TaskInfo) -> None:
        """Take over an apply (create, edit, apply, delete) another instance left: the intent
        is in the database and applying it is idempotent, so it runs again."""
        gone = task.kind == "network.delete"
        await self._tasks.resume(task, self._apply_body(task.created_by, task.target, gone=gone))

    def _apply_body(
        self, user: str, name: str, *, gone: bool
    ) -> Callable[[TaskContext], Awaitable[dict[str, Any]]]:
        async def body(ctx: TaskContext) -> dict[str, Any]:
            async def run() -> dict[str, Any]:
                per_host = await self.realiser.apply_all(ctx, name, gone=gone)
                failed = {h: why for h, why in per_host.items() if why not in (APPLIED, REMOVED)}
                # A network some hosts cannot have (no NIC with the label, no address for a
                # tunnel) is still a network: the task fails only when no host has it, or
                # when a host could not drop a deleted one. The states say which host lacks it.
                if failed and (gone or len(failed) == len(per_host)):
                    raise HostError(
                        f"network {name}: "
                        + "; ".join(f"host {h}: {why}" for h, why in sorted(failed.items()))
                    )
                return {"network": name, "hosts": per_host}

            return await self._audit.outcome(user, APPLY_KIND, name, run)

        return body

    # -- drift -------------------------------------------------------------------------------
    async def check(self) -> list[NetworkInfo]:
        """Compare every connected host with the intent; drifted networks are marked."""
        for host in [h for h in self._hosts.all() if h.connected]:
            async with self.realiser.lock(host.name):
                networks = await self.list_networks()
                try:
                    seen = await host.networks.corral_networks()
                    bridges = await self._agent_bridges(host.name, networks)
                except CorralError as exc:
                    log.warning("network check of host %s failed: %s", host.name, exc.message)
                    continue
                states = checked_states(host.name, networks, seen, bridges)
                await self._db(partial(_write_states, host=host.name, states=states))
        return await self.list_networks()

    async def _check_every(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                if self.leases is not None and await self.leases.holds(DRIFT_LEASE) is None:
                    continue  # another instance checks
                if await self._db(net_store.list_networks):
                    await self.check()
            except CorralError as exc:
                log.warning("periodic network check failed: %s", exc.message)
            # Top of a background loop: one failed pass (SQLite answering "database is locked"
            # under load) must not end drift checks for good; the next pass retries.
            except Exception:
                log.exception("periodic network check failed")

    async def _agent_bridges(
        self, host: str, networks: list[NetworkInfo]
    ) -> dict[str, list[str]] | None:
        agent = self.realiser.agent
        bridged = [n for n in networks if n.kind in (NetworkKind.BRIDGE, NetworkKind.VXLAN)]
        if agent is None or not any(
            h.host == host and h.state is not NetworkHostState.FAILED
            for n in bridged
            for h in n.hosts
        ):
            return None
        return agent_bridges(await agent(host, "net.state", {}, timeout_s=30.0))

    # -- what hosts lack ---------------------------------------------------------------------
    async def lacking(self, networks: set[str]) -> dict[str, str]:
        """Hosts that lack a required network or one of ``networks`` (cluster networks only),
        with what they lack in words: such a host takes no VM needing them."""
        out: dict[str, list[str]] = {}
        for net in await self.list_networks():
            if not (net.required or net.name in networks):
                continue
            applied = {h.host for h in net.hosts if h.state is NetworkHostState.APPLIED}
            for host in self._hosts.all():
                if host.name not in applied:
                    kind = "required network" if net.required else "network"
                    out.setdefault(host.name, []).append(f"the {kind} {net.name}")
        return {host: ", ".join(items) for host, items in out.items()}

    async def not_applied(self, host: str, networks: set[str]) -> list[str]:
        """Which of ``networks`` are cluster networks not applied on ``host``."""
        return sorted(
            net.name
            for net in await self.list_networks()
            if net.name in networks
            and not any(h.host == host and h.state is NetworkHostState.APPLIED for h in net.hosts)
        )

    # -- hosts (re)connecting ----------------------------------------------------------------
    async def on_host_connected(self, host: LibvirtHost) -> None:
        """A host (re)connected or was enrolled: it gets the cluster's networks at once."""
        with contextlib.suppress(CorralError):
            await self.realiser.apply_host(host, force=False)

    def start(self, interval_s: float) -> None:
        """Check for drift every ``interval_s`` (the reconciler's period); with ``leases``,
        only while this instance holds the drift check's lease."""
        if self.leases is not None:
            self.leases.want(DRIFT_LEASE)
        task = asyncio.create_task(self._check_every(interval_s), name="network-drift")
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def stop(self) -> None:
        for task in self._jobs:
            task.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)

    def apply_soon(self, name: str) -> None:
        """Apply the cluster's networks to host ``name`` in the background."""
        self._spawn(name)

    def _spawn(self, name: str) -> None:
        async def job() -> None:
            with contextlib.suppress(CorralError):
                host = self._hosts.connected(name)
                await self.realiser.apply_host(host, force=False)

        task = asyncio.create_task(job(), name=f"network-apply-{name}")
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
