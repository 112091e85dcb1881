"""This Corral process as one instance among those sharing the database.

Each ``corral serve`` process is an instance: a random id (new at every start, so a restarted
process never mistakes its predecessor's leases for its own), the machine's hostname and its
pid. Its heartbeat row says it is alive; tasks and leases it holds name it as their owner.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from corral import store
from corral.errors import CorralError
from corral.services._background import BackgroundTask
from corral.services._db import Db

log = logging.getLogger(__name__)

#: How often an instance writes its heartbeat.
HEARTBEAT_S = 1.0
#: Instances silent for longer are forgotten (their rows only; their tasks go by lease).
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class InstanceIdentity:
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    hostname: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def __str__(self) -> str:
        return f"{self.id} ({self.hostname}, pid {self.pid})"


class InstanceService:
    """Registers this instance, keeps its heartbeat, marks it stopped at the end."""

    def __init__(self, db: Db, identity: InstanceIdentity | None = None) -> None:
        self._db = db
        self.identity = identity or InstanceIdentity()
        self._beat = BackgroundTask("instance-heartbeat", self._heartbeats)

    async def start(self) -> None:
        me = self.identity
        await self._db(lambda s: store.register_instance(s, me.id, me.hostname, me.pid))
        await self._db(lambda s: store.prune_instances(s, FORGET_AFTER))
        log.info("Corral instance %s", me)
        self._beat.start()

    async def stop(self) -> None:
        await self._beat.stop()
        try:
            await self._db(lambda s: store.stop_instance(s, self.identity.id))
        except CorralError as exc:
            log.warning("could not mark instance %s stopped: %s", self.identity.id, exc.message)

    async def live(self, within: timedelta = timedelta(seconds=5)) -> list[store.Instance]:
        return await self._db(lambda s: store.live_instances(s, within))

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self._db(lambda s: store.heartbeat(s, self.identity.id))
            except (SQLAlchemyError, CorralError) as exc:  # a database outage must not end the loop
                log.warning("heartbeat of instance %s not stored: %s", self.identity.id, exc)
