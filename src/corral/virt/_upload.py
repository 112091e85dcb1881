"""``VolumeWriter``: a new volume filled from async code, one chunk at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from corral.errors import CorralError
from corral.virt._connection import ManagedConnection
from corral.virt._transfer import VolumeUpload
from corral.virt.types import VolumeRef

log = logging.getLogger(__name__)


class VolumeWriter:
    """Fills a volume created by ``PoolStorage.open_upload`` with exactly ``total`` bytes.

    Each :meth:`write` is one worker-thread call under the host's call timeout, so a stuck host
    fails the upload instead of hanging it. After :meth:`finish` the volume is whole; anything
    else must end with :meth:`abort`, which deletes it (an upload leaves a whole volume or none).
    """

    def __init__(self, conn: ManagedConnection, job: VolumeUpload, name: str) -> None:
        self.name = name
        self._conn = conn
        self._job = job
        self._pending: asyncio.Future[None] | None = None

    @property
    def done(self) -> int:
        return self._job.done

    @property
    def total(self) -> int:
        return self._job.total

    async def write(self, data: bytes) -> None:
        job = self._job
        pending = asyncio.ensure_future(
            self._conn.run(f"upload into volume {self.name}", lambda _c: job.send(data))
        )
        self._pending = pending
        # Shielded: a cancelled caller must not leave a send running beside abort's delete.
        await asyncio.shield(pending)

    async def finish(self) -> VolumeRef:
        return await self._conn.run(f"finish the upload into volume {self.name}",
                                    lambda _c: self._job.finish())  # fmt: skip

    async def abort(self) -> None:
        """Stop and delete the volume. Logs (never raises) when the host cannot be told."""
        pending = self._pending
        if pending is not None and not pending.done():
            with contextlib.suppress(CorralError, TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(self._conn.call_timeout):
                    await asyncio.shield(pending)
        try:
            await self._conn.run(f"delete the partial volume {self.name}",
                                 lambda _c: self._job.abort())  # fmt: skip
        except CorralError as exc:
            log.error("could not delete the partial volume %s: %s", self.name, exc.message)
