"""Receiving an image: every check before a volume exists, then a task that streams the bytes.

Order of work (nothing is left behind by a refusal or a failure):

1. :meth:`Upload.check`: the size is known (``Content-Length``) and not zero, the name is free in
   the place (a host's pool, or a shared storage domain; for any kind), the place keeps images
   of the kind asked, it has room for the whole image besides what is promised to the uploads
   already running there (``room.py``): the upload promises itself that room until it ends.
2. :meth:`Upload.run` reads the head of the body (``HEAD_BYTES``, 32 KiB and a bit, enough for
   the ISO 9660 signature) and decides the kind and format from it: an upload that is not an ISO
   where one is expected, a qcow2 image with a backing file, a VMDK… are refused here.
3. Only then a task (``image.upload``, target ``HOST/NAME`` or ``DOMAIN/NAME``) creates the
   volume and streams the body into it (an nfs domain's through the host agent), reporting
   ``bytes_done``/``bytes_total`` as it arrives. A client that goes away or falls silent for
   ``IDLE_TIMEOUT_S``, a cancel, or a host failure deletes the partial volume.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from corral.errors import (
    Cancelled,
    Conflict,
    CorralError,
    InvalidRequest,
    OperationTimeout,
)
from corral.model.image import ImageKind
from corral.model.task import TaskInfo, TaskState
from corral.services.audit import AuditService
from corral.services.images._names import image_volume
from corral.services.images.places import ImagePlace, kind_refusal
from corral.services.images.room import PoolRoom, Promise, size_text
from corral.services.principal import Principal
from corral.services.tasks import TaskContext, TaskService
from corral.virt import HEAD_BYTES, ImageProbe, probe_header

if TYPE_CHECKING:  # corral.services.storage imports the image library
    from corral.services.storage.driver import ImageWriter

#: Bytes handed to libvirt at a time (the body arrives in pieces of ~64 KiB).
BLOCK_BYTES = 1024 * 1024
#: A body that stops arriving for this long is abandoned.
IDLE_TIMEOUT_S = 60.0


def decide_kind(asked: ImageKind | None, probe: ImageProbe, name: str) -> ImageKind:
    """The kind the bytes are: what was asked, if the bytes agree; else InvalidRequest."""
    found = ImageKind.ISO if probe.iso else ImageKind.DISK
    if asked is None or asked is found:
        return found
    if asked is ImageKind.KERNEL:
        if probe.format == "raw" and not probe.iso:
            return ImageKind.KERNEL
        what = "a qcow2 disk image" if probe.format == "qcow2" else "an ISO 9660 image"
        raise InvalidRequest(
            f"{name} is {what}, but kind kernel was asked: kernel images are the files a "
            "kernel or initrd is (vmlinuz, initrd.img)"
        )
    if asked is ImageKind.ISO:
        what = "a qcow2 disk image" if probe.format == "qcow2" else "no ISO 9660 or UDF image"
        raise InvalidRequest(
            f"{name} is {what} (no CD001 signature at byte 32769), but kind iso was asked: "
            "CD-ROM media must be ISO images; upload disk images with kind disk"
        )
    raise InvalidRequest(
        f"{name} is an ISO 9660 image, but kind disk was asked: upload it with kind iso "
        "to use it as CD-ROM media"
    )


async def _next(chunks: AsyncIterator[bytes]) -> bytes | None:
    try:
        async with asyncio.timeout(IDLE_TIMEOUT_S):
            return await anext(chunks)
    except StopAsyncIteration:
        return None
    except TimeoutError:
        raise OperationTimeout(
            f"no data arrived for {IDLE_TIMEOUT_S:g} s: the upload was abandoned"
        ) from None


class Upload:
    """One upload of image ``name`` (``total`` bytes) to ``place``."""

    def __init__(
        self,
        place: ImagePlace,
        name: str,
        kind: ImageKind | None,
        total: int,
        principal: Principal,
        tasks: TaskService,
        audit: AuditService,
        room: PoolRoom,
    ) -> None:
        self.place = place
        self.name = name
        self.kind = kind
        self.total = total
        self._principal = principal
        self._tasks = tasks
        self._audit = audit
        self._room = room
        self._received = 0

    @property
    def target(self) -> str:
        return self.place.target(self.name)

    @asynccontextmanager
    async def check(self) -> AsyncIterator[Promise]:
        """What needs no byte of the body: size, name, kind, room in the place (promised to
        this upload until the ``with`` ends)."""
        place = self.place
        if self.total <= 0:
            raise InvalidRequest("the body is empty: send the image's bytes")
        if self.kind is not None and (why := kind_refusal(place.domain, place.kind, self.kind)):
            raise Conflict(why)
        for kind in ImageKind:
            if await place.volume_exists(image_volume(kind, self.name)):
                raise Conflict(
                    f"{place.where} already has an image named {self.name!r}: "
                    "choose another name or delete that image first"
                )
        where = place.where if place.shared else None
        room = self._room.promise(place.key, self.name, self.total, place.free_bytes, where)
        async with room as promise:
            yield promise

    async def _read_head(self, chunks: AsyncIterator[bytes]) -> bytes:
        want = min(self.total, HEAD_BYTES)
        head = bytearray()
        while len(head) < want:
            chunk = await _next(chunks)
            if chunk is None:
                raise self._short()
            head += chunk
        self._received = len(head)
        return bytes(head)

    def _short(self) -> InvalidRequest:
        return InvalidRequest(
            f"the body ended after {size_text(self._received)} of {size_text(self.total)}: "
            "nothing was kept"
        )

    async def _blocks(self, head: bytes, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The whole body in blocks of about ``BLOCK_BYTES``, starting with ``head``."""
        block = bytearray(head)
        while self._received < self.total:
            if len(block) >= BLOCK_BYTES:
                yield bytes(block)
                block.clear()
            chunk = await _next(chunks)
            if chunk is None:
                raise self._short()
            self._received += len(chunk)
            block += chunk
        if block:
            yield bytes(block)

    async def run(
        self, chunks: AsyncIterator[bytes], hold_as: Callable[[str], None], promise: Promise
    ) -> TaskInfo:
        """Probe the head, then stream everything as a task; the finished task, or the error
        that ended it. ``hold_as`` relabels the hold on the image: "an upload (task …)" hides
        it; once its bytes are complete, it is shown while the task finishes."""
        head = await self._read_head(chunks)
        probe = probe_header(head, self.total, self.name)
        kind = decide_kind(self.kind, probe, self.name)
        volume = image_volume(kind, self.name)
        failure: list[CorralError] = []

        async def body(ctx: TaskContext) -> dict[str, Any]:
            hold_as(f"an upload (task {ctx.id})")
            try:
                await self._audit.outcome(
                    self._principal.user,
                    "image.upload",
                    self.target,
                    lambda: self._stream(ctx, volume, probe, head, chunks, promise),
                )
                hold_as(f"the end of its upload (task {ctx.id})")
            except CorralError as exc:
                failure.append(exc)
                raise
            return {"image": self.name, "domain": self.place.domain,
                    "host": self.place.host.name, "kind": kind.value,
                    "format": probe.format, "bytes": self.total}  # fmt: skip

        phase = f"receiving {kind.value} image {self.name}"
        task = await self._tasks.run("image.upload", self.target, self._principal, body, phase)
        if task.state is TaskState.SUCCEEDED:
            return task
        if failure:
            raise failure[0]
        raise Cancelled(task.error or f"the upload of image {self.name!r} was cancelled")

    async def _stream(
        self,
        ctx: TaskContext,
        volume: str,
        probe: ImageProbe,
        head: bytes,
        chunks: AsyncIterator[bytes],
        promise: Promise,
    ) -> None:
        total = self.total
        ctx.report(0.0, bytes_done=0, bytes_total=total)
        writer: ImageWriter = await self.place.open_upload(
            volume, probe.format, probe.capacity, total
        )
        try:
            async for block in self._blocks(head, chunks):
                if ctx.cancel_requested:
                    raise Cancelled(
                        f"the upload of image {self.name!r} was cancelled: nothing was kept"
                    )
                await writer.write(block)
                promise.written(writer.done)  # the pool's free space has shrunk by as much
                ctx.report(writer.done / total, bytes_done=writer.done, bytes_total=total)
            await writer.finish()
        except BaseException:
            await writer.abort()
            raise
