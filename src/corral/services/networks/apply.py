"""Apply the cluster's networks to one host, in two phases.

1. The host agent gets the complete set of Corral-managed bridges for the host (``net.apply``);
   before it changes anything it saves the current state, and it restores that by itself
   unless confirmed within ``ROLLBACK_AFTER_S``.
2. libvirt gets one network per cluster network; Corral's networks that are no longer wanted go.
3. Corral proves it still reaches the host — a fresh agent call (``net.confirm``) and a libvirt
   round trip — which confirms the change. If anything fails, the libvirt networks changed are
   put back and the agent's change is not confirmed: the host is as it was.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

from corral.errors import Conflict, CorralError, HostError
from corral.model.network import NetworkHostState
from corral.services.networks._plan import ROLLBACK_AFTER_S, HostPlan
from corral.virt import LibvirtHost

log = logging.getLogger(__name__)

AGENT_TIMEOUT_S = 60.0


class AgentCall(Protocol):
    """``services.host_agents``' call: one op of Corral's host agent on a host."""

    def __call__(
        self, host_name: str, op: str, args: dict[str, Any], *, timeout_s: float
    ) -> Awaitable[dict[str, Any]]: ...


@dataclass(frozen=True)
class Outcome:
    state: NetworkHostState
    reason: str | None = None


NO_AGENT = (
    "bridge and vxlan networks need Corral's host agent, which this Corral cannot run on "
    "host {host} yet"
)


class HostApply:
    """One apply on one host (``run``), with what it changed so far, to undo on failure."""

    def __init__(self, host: LibvirtHost, plan: HostPlan, agent: AgentCall | None) -> None:
        self._host = host
        self._plan = plan
        self._agent = agent
        self._undo: list[tuple[str, str]] = []
        if agent is None and plan.bridges:
            # Without the agent the nat and isolated networks still apply; the others fail.
            why = NO_AGENT.format(host=host.name)
            for want in [d for d in plan.libvirt if d.mode == "bridge"]:
                plan.problems[want.name] = why
                plan.libvirt.remove(want)
            plan.bridges = []
        #: Why the whole apply failed and was undone on this host (None: it was not).
        self.error: str | None = None
        #: The host agent's part failed (its apply, or Corral could not confirm it): the
        #: change may have cut the host off.
        self.agent_failed = False
        self.outcomes: dict[str, Outcome] = {
            name: Outcome(NetworkHostState.FAILED, why) for name, why in plan.problems.items()
        }

    async def run(self) -> dict[str, Outcome]:
        plan, host = self._plan, self._host
        seen = await host.networks.corral_networks()
        self._skip_foreign(await host.networks.foreign_names())
        bridged = any(s.mode == "bridge" for s in seen.values())
        wanted = {d.name for d in plan.libvirt}
        try:
            agent_needed = plan.bridges or (bridged and self._agent is not None)
            change_id = await self._agent_apply() if agent_needed else None
            for want in plan.libvirt:
                await self._realise(want.name, host.networks.realise(want))
            for name in sorted(set(seen) - wanted):
                previous = await host.networks.remove(name)
                if previous is not None:
                    self._undo.append((name, previous))
            if change_id is not None:
                await self._confirm(change_id)
            await host.networks.ping()
        except CorralError as exc:
            self.error = exc.message
            await self._roll_back()
            for want in plan.libvirt:
                if want.name not in self.outcomes:
                    self.outcomes[want.name] = Outcome(NetworkHostState.FAILED, exc.message)
            return self.outcomes
        for want in plan.libvirt:
            self.outcomes.setdefault(want.name, Outcome(NetworkHostState.APPLIED))
        return self.outcomes

    def _skip_foreign(self, foreign: set[str]) -> None:
        """A network whose name a libvirt network Corral did not make has on this host fails
        here before anything changes (the others go on)."""
        plan = self._plan
        for want in [d for d in plan.libvirt if d.name in foreign]:
            self.outcomes[want.name] = Outcome(
                NetworkHostState.FAILED,
                f"host {self._host.name} already has a libvirt network {want.name!r} that "
                "Corral did not make: rename or remove it there, or name the cluster network "
                "otherwise",
            )
            plan.libvirt.remove(want)
            plan.bridges = [b for b in plan.bridges if b["bridge"] != want.bridge]

    async def _realise(self, name: str, step: Awaitable[str | None]) -> None:
        try:
            previous = await step
        except Conflict as exc:
            # A libvirt network of that name that is not Corral's: this network fails here,
            # the others go on.
            self.outcomes[name] = Outcome(NetworkHostState.FAILED, exc.message)
            return
        if previous is not None:
            self._undo.append((name, previous))

    async def _agent_apply(self) -> str:
        if self._agent is None:
            raise HostError(NO_AGENT.format(host=self._host.name))
        change_id = uuid.uuid4().hex
        args = {
            "change_id": change_id,
            "rollback_after_s": ROLLBACK_AFTER_S,
            "bridges": self._plan.bridges,
        }
        try:
            await self._agent(self._host.name, "net.apply", args, timeout_s=AGENT_TIMEOUT_S)
        except CorralError:
            self.agent_failed = True
            raise
        return change_id

    async def _confirm(self, change_id: str) -> None:
        assert self._agent is not None
        try:
            await self._agent(
                self._host.name, "net.confirm", {"change_id": change_id}, timeout_s=10.0
            )
        except CorralError as exc:
            self.agent_failed = True
            exc.message = (
                f"Corral could not reach host {self._host.name} after the change "
                f"({exc.message}): the host restores its previous networks by itself within "
                f"{ROLLBACK_AFTER_S} s"
            )
            raise

    async def _roll_back(self) -> None:
        for name, previous in reversed(self._undo):
            with contextlib.suppress(CorralError):
                await self._host.networks.restore(name, previous)
        self._undo.clear()
