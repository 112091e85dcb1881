"""Jobs that must run once in the cluster, each under a lease with a fencing token.

Every instance runs the same background jobs (the per-host reconciler passes, the network
drift check, the power sampler's stored rounds and the power policy after them); with several
instances on one database each job must act once. A job names its lease (``want``); every
second this instance takes or renews the leases it wants (3 s, in the ``leases`` table): one
instance holds each, and when it dies another takes the lease within about 4 s, with a token
one higher. A job acts only while ``token(name)`` says this instance holds its lease; writes a
stale holder could spoil go through :meth:`Leases.write`, which re-checks the token in the
same transaction (the reconciler's adoptions and "missing" marks). A holder that loses its
lease (it stalled past the lease) learns it at its next renewal and stops acting.

On SQLite (one instance, see ``sqlite_guard``) the same code runs and always holds them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from corral import store
from corral.errors import Conflict, CorralError
from corral.services._background import BackgroundTask
from corral.services._db import Db

log = logging.getLogger(__name__)

T = TypeVar("T")

LEASE_S = 3.0
RENEW_S = 1.0


class LeaseLost(Conflict):
    """This instance no longer holds the lease a write needed."""


class Leases:
    def __init__(
        self, db: Db, holder: str, ttl_s: float = LEASE_S, renew_s: float = RENEW_S
    ) -> None:
        self._db = db
        self.holder = holder
        self._ttl = timedelta(seconds=ttl_s)
        self._renew_s = renew_s
        self._wanted: set[str] = set()
        self._held: dict[str, int] = {}
        self._loop = BackgroundTask("leases", self._run)

    def want(self, *names: str) -> None:
        """Ask for these leases from now on (taken at the next renewal, or by ``take``)."""
        self._wanted.update(names)

    def token(self, name: str) -> int | None:
        """The fencing token while this instance holds ``name`` (None: it does not)."""
        return self._held.get(name)

    async def take(self, name: str) -> int | None:
        """Want ``name`` and try to take or renew it now; its token, or None."""
        self._wanted.add(name)
        token = await self._db(lambda s: store.take_lease(s, name, self.holder, self._ttl))
        self._note(name, token)
        return token

    async def holds(self, name: str) -> int | None:
        """The token if this instance holds ``name``, taking it now if it is free (a job at
        the start of a pass: it need not wait for the next renewal)."""
        return self.token(name) or await self.take(name)

    async def write(self, name: str, token: int, fn: Callable[[Session], T]) -> T:
        """``fn(session)`` in one transaction, only if ``token`` still holds ``name`` (the
        lease row stays locked until the write commits); LeaseLost otherwise."""

        def guarded(session: Session) -> T:
            if not store.lease_valid(session, name, token):
                raise LeaseLost(f"lease {name} (token {token}) is no longer held here")
            return fn(session)

        try:
            return await self._db(guarded)
        except LeaseLost:
            self._held.pop(name, None)
            raise

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        """Stop renewing and give every lease up at once (the next holder need not wait)."""
        await self._loop.stop()
        held, self._held = list(self._held), {}
        for name in held:
            try:
                await self._db(partial(store.release_lease, name=name, holder=self.holder))
            except (SQLAlchemyError, CorralError) as exc:
                log.warning("lease %s not given up: %s", name, exc)

    async def renew(self) -> None:
        """Take or renew every lease this instance wants, in one transaction."""
        names = list(self._wanted)
        if not names:
            return
        tokens = await self._db(lambda s: store.take_leases(s, names, self.holder, self._ttl))
        for name, token in tokens.items():
            self._note(name, token)

    def _note(self, name: str, token: int | None) -> None:
        before = self._held.get(name)
        if token is None:
            if before is not None:
                log.warning("lease %s lost by instance %s", name, self.holder)
                del self._held[name]
            return
        if before != token:
            log.info("lease %s held by instance %s (token %d)", name, self.holder, token)
        self._held[name] = token

    async def _run(self) -> None:
        while True:
            try:
                await self.renew()
            except (SQLAlchemyError, CorralError) as exc:  # an outage must not end the loop
                log.warning("lease renewal: %s", exc)
                # Not knowing means not holding: a job must not act on a lease it may have lost.
                self._held.clear()
            await asyncio.sleep(self._renew_s)
