"""One long operation at a time per VM (shutdown, clone, snapshot, delete must not interleave)."""

from __future__ import annotations

from collections.abc import AsyncIterator
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

    def busy(self, vm: str) -> str | None:
        return self._held.get(vm)
