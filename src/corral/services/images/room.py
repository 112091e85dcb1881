"""Room in a host's pool, promised to the uploads that are running there.

An upload's volume grows as its bytes arrive, so the pool's free space alone says nothing about
the uploads still under way: three 60 GiB uploads were all accepted with 77 GiB free. Each
upload therefore promises itself its declared size before its first byte is read (checked
against the free space minus what is promised to the others, under one lock per host), keeps
the promise at what it has still to write, and gives it back when it ends, however it ends.
In memory, per manager process: a restart ends every upload, and their promises with them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from corral.errors import InsufficientResources


def size_text(value: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value} bytes"


class Promise:
    """One upload's promise; ``written(done)`` shrinks it to what is left to write."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.left = total

    def written(self, done: int) -> None:
        self.left = max(0, self.total - done)


class PoolRoom:
    def __init__(self) -> None:
        self._promises: dict[str, list[Promise]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def promised(self, host: str) -> int:
        """Bytes promised on ``host`` to uploads still writing."""
        return sum(p.left for p in self._promises.get(host, []))

    @asynccontextmanager
    async def promise(
        self,
        host: str,
        image: str,
        total: int,
        free_bytes: Callable[[], Awaitable[int]],
        where: str | None = None,
    ) -> AsyncIterator[Promise]:
        """Promise ``total`` bytes of ``host``'s pool (or of the place ``host`` keys, named
        ``where``: a shared storage domain) to the upload of ``image`` for the time of the
        ``with``; InsufficientResources, naming the free space, if they are not there."""
        async with self._locks.setdefault(host, asyncio.Lock()):
            free = await free_bytes()
            promised = self.promised(host)
            if total > free - promised:
                pool = where or f"host {host!r} in Corral's storage pool"
                raise InsufficientResources(_refusal(pool, image, total, free, promised))
            mine = Promise(total)
            self._promises.setdefault(host, []).append(mine)
        try:
            yield mine
        finally:
            self._promises[host].remove(mine)


def _refusal(pool: str, image: str, total: int, free: int, promised: int) -> str:
    need, have = size_text(total), size_text(free)
    if need == have:
        need, have = f"{total} bytes", f"{free} bytes"
    if not promised:
        return (
            f"{_has(pool, have)}, image {image!r} needs "
            f"{need}: free space there or upload to another host"
        )
    return (
        f"{_has(pool, have)}, of which "
        f"{size_text(promised)} is promised to uploads still running there; image {image!r} "
        f"needs {need}: wait for those uploads, free space there or upload to another host"
    )


def _has(pool: str, have: str) -> str:
    """'host 'h1' has 3 GiB free in Corral's storage pool', 'storage domain 'nfs' has …'."""
    place, _, rest = pool.partition(" in ")
    return f"{place} has {have} free" + (f" in {rest}" if rest else "")
