"""Realise the cluster's networks on hosts: per host, one :class:`HostApply` at a time, its
outcome stored as each network's state on that host. Applies run on create, change and
delete (as a task with progress per host) and whenever a host (re)connects."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

from sqlalchemy.orm import Session

from corral import store
from corral.errors import CorralError
from corral.model.network import NetworkHostState, NetworkKind
from corral.services._db import Db
from corral.services.hosts import HostService
from corral.services.networks._plan import HostPlan, Intent, plan_host
from corral.services.networks.apply import AgentCall, HostApply, Outcome
from corral.services.tasks import TaskContext
from corral.store import networks as net_store
from corral.virt import LibvirtHost

log = logging.getLogger(__name__)
APPLIED = "applied"
REMOVED = "removed"
HELD_BACK = "held back: the same change failed at the host agent before"


class NetworkRealiser:
    def __init__(self, db: Db, hosts: HostService, agent: AgentCall | None) -> None:
        self._db = db
        self._hosts = hosts
        self.agent = agent
        self._locks: dict[str, asyncio.Lock] = {}
        #: Per host, the bridges (as sent) whose apply failed at the agent.
        self._held_back: dict[str, str] = {}

    def lock(self, host: str) -> asyncio.Lock:
        """One apply or check at a time per host."""
        return self._locks.setdefault(host, asyncio.Lock())

    async def plan(self, host: str) -> HostPlan:
        def read(session: Session) -> HostPlan:
            intents = [
                Intent(r.id, r.name, NetworkKind(r.kind), r.uplink, r.vni, r.vlan)
                for r in net_store.list_networks(session)
            ]
            labels = {i.label: i.nic for i in net_store.nic_labels(session, host)}
            addresses = {h.name: h.address for h in store.list_hosts(session)}
            return plan_host(host, intents, labels, addresses)

        return await self._db.read(read)

    async def apply_host(
        self, host: LibvirtHost, *, force: bool = True
    ) -> tuple[dict[str, Outcome], str | None]:
        """Apply every network to ``host`` and store the states; each network's outcome and
        why the whole apply failed (None: it did not). Never raises for the host's own
        failure (the states say it).

        Without ``force`` (a host reconnecting, a label changed) a set of bridges whose apply
        failed at the host's agent is not tried again unchanged: that change may be what cut
        the host off, and it rolled back; an administrator's apply or change tries again."""
        async with self.lock(host.name):
            plan = await self.plan(host.name)
            bridges = json.dumps(plan.bridges, sort_keys=True)
            if not force and plan.bridges and self._held_back.get(host.name) == bridges:
                log.info("host %s: not applying again the bridges that failed there", host.name)
                return {}, HELD_BACK
            apply = HostApply(host, plan, self.agent)
            try:
                outcomes, error = await apply.run(), apply.error
            except CorralError as exc:
                # Not even the first look at the host worked: nothing was changed.
                outcomes, error = dict(apply.outcomes), exc.message
                for want in plan.libvirt:
                    outcomes[want.name] = Outcome(NetworkHostState.FAILED, exc.message)
            if apply.agent_failed:
                self._held_back[host.name] = bridges
            else:
                self._held_back.pop(host.name, None)
            await self._store(host.name, outcomes)
            return outcomes, error

    async def _store(self, host: str, outcomes: dict[str, Outcome]) -> None:
        def write(session: Session) -> None:
            known = {r.name for r in net_store.list_networks(session)}
            for name, outcome in outcomes.items():
                if name in known:
                    net_store.set_host_state(session, name, host, outcome.state, outcome.reason)

        await self._db(write)
        for name, outcome in outcomes.items():
            if outcome.state is NetworkHostState.FAILED:
                log.warning("network %s on host %s: %s", name, host, outcome.reason)

    async def apply_all(
        self, ctx: TaskContext | None, network: str, *, gone: bool = False
    ) -> dict[str, str]:
        """Apply on every connected host, with progress per host. The result: per host,
        ``applied`` or why ``network`` is not there (``gone``: ``removed`` or why not)."""
        hosts: Sequence[LibvirtHost] = [h for h in self._hosts.all() if h.connected]
        result: dict[str, str] = {}
        for done, host in enumerate(hosts):
            if ctx is not None:
                await ctx.progress(done / max(len(hosts), 1), phase=f"applying on host {host.name}")
            outcomes, error = await self.apply_host(host)
            if gone:
                result[host.name] = f"not removed: {error}" if error else REMOVED
                continue
            outcome = outcomes.get(network)
            if outcome is not None and outcome.state is NetworkHostState.APPLIED:
                result[host.name] = APPLIED
            elif outcome is not None:
                result[host.name] = outcome.reason or "failed"
            else:
                result[host.name] = error or "failed"
        if ctx is not None:
            await ctx.progress(1.0, phase="applied", force=True)
        return result
