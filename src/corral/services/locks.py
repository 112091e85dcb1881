"""One long operation at a time per VM (shutdown, clone, snapshot, delete must not interleave)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from corral.errors import Conflict


class OperationLocks:
    def __init__(self) -> None:
        self._held: dict[str, str] = {}

    @asynccontextmanager
    async def hold(self, vm: str, operation: str) -> AsyncIterator[None]:
        """Fail fast with Conflict instead of queueing: the caller should see the clash."""
        current = self._held.get(vm)
        if current is not None:
            raise Conflict(
                f"VM {vm!r} is busy with {current}; wait for it to finish (see `corral task list`)"
            )
        self._held[vm] = operation
        try:
            yield
        finally:
            del self._held[vm]

    def acquire(self, vm: str, operation: str) -> Callable[[], None]:
        """Take the lock now (Conflict if held) and return what releases it: for work that
        starts in a request and ends in a task (a migration holds its VM from the pre-flight
        checks to the end)."""
        current = self._held.get(vm)
        if current is not None:
            raise Conflict(
                f"VM {vm!r} is busy with {current}; wait for it to finish (see `corral task list`)"
            )
        self._held[vm] = operation
        released = False

        def release() -> None:
            nonlocal released
            if not released and self._held.get(vm) == operation:
                del self._held[vm]
            released = True

        return release

    def busy(self, vm: str) -> str | None:
        return self._held.get(vm)
