"""The auto mode: after every sampling round, when the cluster's ``power_policy`` is ``auto``
and no power task runs, plan; a non-empty plan is applied at once, as the user ``corral``.

No plan is made on samples from before the last change of placement (see ``snapshot``), so
after a plan finishes — or fails — the hosts it touched are judged again only once a whole
window has passed: the policy does not chase its own tail.
"""

from __future__ import annotations

import logging

from corral.errors import CorralError
from corral.model.auth import Role
from corral.model.power import PowerPolicyMode
from corral.services.cluster import ClusterSettingsService
from corral.services.power.apply import PowerApply
from corral.services.power.plan import PowerPlanner
from corral.services.principal import Principal

log = logging.getLogger(__name__)

#: Who the audit log names for what the policy does by itself.
POLICY = Principal(user="corral-power-policy", role=Role.ADMIN)


class AutoPower:
    def __init__(
        self, cluster: ClusterSettingsService, planner: PowerPlanner, apply: PowerApply
    ) -> None:
        self._cluster = cluster
        self._planner = planner
        self._apply = apply

    async def tick_quietly(self) -> None:
        """``tick`` for the sampler's callbacks."""
        await self.tick()

    async def tick(self) -> str | None:
        """Plan and apply if the policy says so; the task started, if any."""
        if (await self._cluster.get()).power_policy is not PowerPolicyMode.AUTO:
            return None
        if self._apply.running is not None:
            return None
        try:
            plan = await self._planner.plan()
            if plan.plan.is_empty:
                return None
            log.info("power policy (auto): applying plan %s: %s", plan.id, plan.plan.reasons)
            task = await self._apply.start(POLICY, plan.id)
        except CorralError as exc:
            log.warning("power policy (auto): %s", exc.message)
            return None
        return task.id
