"""One long operation at a time per VM (shutdown, clone, snapshot, delete must not interleave).

Within one process a dict answers at once. With several instances (``db`` given) a lock is also
a row of ``operation_locks``, renewed every second by its instance for 2 s: another instance
asking for the same VM is refused with the same Conflict, and the locks of an instance that
died lapse with it. :meth:`OperationLocks.acquire` is synchronous (it is called where a request
hands its lock to a task), so its row is written in the event loop's thread: one short
transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from corral import store
from corral.errors import Conflict, CorralError
from corral.services._background import BackgroundTask
from corral.services._db import Db

log = logging.getLogger(__name__)

#: Shorter than a task's lease (4 s), renewed every second: when an instance dies its
#: locks have lapsed by the time another claims its tasks, whose resumers lock the VM again.
LOCK_S = 2.0
RENEW_S = 1.0
_RACED = "an operation another Corral instance has just started"


def _busy(vm: str, current: str) -> Conflict:
    return Conflict(
        f"VM {vm!r} is busy with {current}; wait for it to finish (see `corral task list`)"
    )


class OperationLocks:
    def __init__(self, db: Db | None = None, holder: str = "") -> None:
        self._held: dict[str, str] = {}
        self._db = db
        self._holder = holder
        self._ttl = timedelta(seconds=LOCK_S)
        self._renewal = BackgroundTask("operation-locks", self._renew)

    @asynccontextmanager
    async def hold(self, vm: str, operation: str) -> AsyncIterator[None]:
        """Fail fast with Conflict instead of queueing: the caller should see the clash."""
        self._take_local(vm, operation)
        try:
            if self._db is not None:
                try:
                    current = await self._db(self._taker(vm, operation))
                except IntegrityError:  # another instance inserted its row at the same time
                    current = _RACED
                self._check(vm, current)
        except BaseException:
            self._held.pop(vm, None)
            raise
        try:
            yield
        finally:
            del self._held[vm]
            if self._db is not None:
                await self._release_shared(vm)

    def acquire(self, vm: str, operation: str) -> Callable[[], None]:
        """Take the lock now (Conflict if held) and return what releases it: for work that
        starts in a request and ends in a task (a migration holds its VM from the pre-flight
        checks to the end)."""
        self._take_local(vm, operation)
        try:
            if self._db is not None:
                try:
                    current = self._db.sync(self._taker(vm, operation))
                except IntegrityError:  # another instance inserted its row at the same time
                    current = _RACED
                self._check(vm, current)
        except BaseException:
            self._held.pop(vm, None)
            raise
        released = False

        def release() -> None:
            nonlocal released
            if not released and self._held.get(vm) == operation:
                del self._held[vm]
                self._release_now(vm)
            released = True

        return release

    def busy(self, vm: str) -> str | None:
        """This instance's operation on ``vm`` (see :meth:`busy_anywhere` for the cluster)."""
        return self._held.get(vm)

    async def busy_anywhere(self) -> dict[str, str]:
        """Every VM busy in the cluster, with its operation (one query, for a whole pass)."""
        shared = await self._db.read(store.operation_locks) if self._db is not None else {}
        return {**shared, **self._held}

    async def start(self, *, sole: bool = False) -> None:
        """Renew this instance's locks from now on; ``sole`` (SQLite: no other instance can
        run), first forget the locks a predecessor left."""
        if self._db is None:
            return
        if sole:
            await self._db(store.forget_operation_locks)
        self._renewal.start()

    async def stop(self) -> None:
        await self._renewal.stop()

    def _take_local(self, vm: str, operation: str) -> None:
        current = self._held.get(vm)
        if current is not None:
            raise _busy(vm, current)
        self._held[vm] = operation

    def _taker(self, vm: str, operation: str) -> Callable[..., str | None]:
        return partial(
            store.take_operation_lock, vm=vm, operation=operation, holder=self._holder,
            ttl=self._ttl,
        )  # fmt: skip

    @staticmethod
    def _check(vm: str, current: str | None) -> None:
        if current is not None:
            raise _busy(vm, current)

    async def _release_shared(self, vm: str) -> None:
        assert self._db is not None
        try:
            await self._db(partial(store.release_operation_lock, vm=vm, holder=self._holder))
        except (SQLAlchemyError, CorralError) as exc:  # it lapses by itself in 2 s
            log.warning("operation lock of VM %s not released: %s", vm, exc)

    def _release_now(self, vm: str) -> None:
        """Delete the row before the caller goes on, as :meth:`acquire` wrote it: released
        later (a task of its own), the row outlived the release, and the next request for
        the VM, on this very instance, was refused as busy with an operation that had ended."""
        if self._db is None:
            return
        try:
            self._db.sync(partial(store.release_operation_lock, vm=vm, holder=self._holder))
        except (SQLAlchemyError, CorralError) as exc:  # it lapses by itself in 2 s
            log.warning("operation lock of VM %s not released: %s", vm, exc)

    async def _renew(self) -> None:
        assert self._db is not None
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                await self._db(
                    partial(store.renew_operation_locks, holder=self._holder, ttl=self._ttl)
                )
            except (SQLAlchemyError, CorralError) as exc:  # an outage must not end the loop
                log.warning("operation locks not renewed: %s", exc)
