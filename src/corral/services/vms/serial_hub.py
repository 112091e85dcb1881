"""One serial console stream per VM, shared by every reader; only writers' keys reach the guest.

libvirt gives a domain's console to one stream at a time: a second open fails, or, with
``VIR_DOMAIN_CONSOLE_FORCE``, takes the console from the first. So Corral opens one stream per
VM at the first reader, fans the guest's output out to every reader, passes on the input of
readers allowed to type (operators, admins), and closes the stream when the last reader leaves.
Nobody takes the console from anybody; a reader too slow to keep up loses its own connection
only.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from corral.errors import CorralError, PermissionDenied


class SerialConsole(Protocol):
    """What a hub needs of a console stream (``corral.virt.SerialConsole``)."""

    async def read(self) -> bytes: ...  # b"" at the end
    async def write(self, data: bytes) -> None: ...
    async def close(self) -> None: ...


#: What one reader may have waiting unread before it is dropped (the others carry on).
MAX_BACKLOG = 1 << 20
#: How long a new reader waits for the VM's previous stream to close before opening anew.
CLOSE_WAIT_S = 10.0


class SerialTap:
    """One reader of a shared console."""

    def __init__(self, hub: SerialHub, writer: bool) -> None:
        self._hub = hub
        self.writer = writer
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._ready = asyncio.Event()
        self._ended = False
        #: Why the tap ended ("" while it has not).
        self.reason = ""

    def _put(self, data: bytes) -> None:
        if self._ended:
            return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > MAX_BACKLOG:
            self._chunks.clear()
            self._end("this reader fell behind the console's output by over 1 MiB")
        self._ready.set()

    def _end(self, reason: str) -> None:
        if not self._ended:
            self._ended, self.reason = True, reason
            self._ready.set()

    async def read(self) -> bytes:
        """The guest's next output; b"" once the console (or this reader) ended."""
        while not self._chunks:
            if self._ended:
                return b""
            self._ready.clear()
            await self._ready.wait()
        data = self._chunks.popleft()
        self._size -= len(data)
        return data

    async def write(self, data: bytes) -> None:
        """Type ``data`` on the guest's console (writers only)."""
        if not self.writer:
            raise PermissionDenied("this serial console is view-only")
        await self._hub.write(data)


class SerialHub:
    """The one stream of one VM's console and its readers."""

    def __init__(self, opened: Awaitable[SerialConsole]) -> None:
        self._opening = asyncio.ensure_future(opened)
        self._console: SerialConsole | None = None
        self._pump: asyncio.Task[None] | None = None
        self._taps: list[SerialTap] = []
        self._write_lock = asyncio.Lock()
        self.ended = False

    def join(self, writer: bool) -> SerialTap:
        tap = SerialTap(self, writer)
        self._taps.append(tap)
        if self.ended:
            tap._end("the serial console closed")
        return tap

    def leave(self, tap: SerialTap) -> bool:
        """Remove ``tap``; True when it was the last (the caller then closes the hub)."""
        self._taps.remove(tap)
        return not self._taps

    async def ready(self) -> None:
        """Wait until the stream is open (raises what opening it raised)."""
        console = await asyncio.shield(self._opening)
        if self._console is None:
            self._console = console
            self._pump = asyncio.create_task(self._fan_out(console))

    async def _fan_out(self, console: SerialConsole) -> None:
        while data := await console.read():
            for tap in self._taps:
                tap._put(data)
        self._finish("the serial console closed (the VM stopped?)")

    def _finish(self, reason: str) -> None:
        self.ended = True
        for tap in self._taps:
            tap._end(reason)

    async def write(self, data: bytes) -> None:
        if self._console is None:
            raise RuntimeError("write before ready()")
        # One writer at a time: two operators' keys interleave by message, never within one.
        async with self._write_lock:
            await self._console.write(data)

    async def close(self) -> None:
        """End every reader and close the stream (once it is open, if it is still opening:
        a stream left open would keep the console from the next reader)."""
        self._finish("the serial console closed")
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        try:
            console = await asyncio.shield(self._opening)
        except asyncio.CancelledError:
            if not self._opening.cancelled():
                self._opening.add_done_callback(_close_late)
            raise
        except CorralError:
            return  # it never opened (the reader was told why)
        await console.close()


#: Closes of streams that finished opening after their hub closed (kept: tasks are weak).
_LATE_CLOSES: set[asyncio.Task[None]] = set()


def _close_late(opening: asyncio.Future[SerialConsole]) -> None:
    if opening.cancelled() or opening.exception() is not None:
        return
    task = asyncio.ensure_future(opening.result().close())
    _LATE_CLOSES.add(task)
    task.add_done_callback(_LATE_CLOSES.discard)


class SerialHubs:
    """The shared consoles of this process, by VM (its UUID)."""

    def __init__(self) -> None:
        self._hubs: dict[str, SerialHub] = {}
        #: Hubs closing, by VM: a new stream waits until the old one is closed.
        self._closing: dict[str, asyncio.Future[None]] = {}

    @contextlib.asynccontextmanager
    async def tap(
        self, key: str, writer: bool, open_console: Callable[[], Awaitable[SerialConsole]]
    ) -> AsyncIterator[SerialTap]:
        """A reader of VM ``key``'s console, opening it (``open_console()``) for the first."""
        hub = self._hubs.get(key)
        while hub is None or hub.ended:
            if (closing := self._closing.get(key)) is not None:
                # Bounded: a host that does not answer the close must not block readers forever.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(closing), CLOSE_WAIT_S)
                if self._closing.get(key) is closing:
                    del self._closing[key]
                hub = self._hubs.get(key)  # another reader may have opened it meanwhile
                continue
            hub = self._hubs[key] = SerialHub(open_console())
        tap = hub.join(writer)
        try:
            try:
                await hub.ready()
            except BaseException:
                if self._hubs.get(key) is hub:
                    del self._hubs[key]  # the next reader tries again
                raise
            yield tap
        finally:
            if hub.leave(tap):
                await self._close(key, hub)

    async def _close(self, key: str, hub: SerialHub) -> None:
        if self._hubs.get(key) is hub:
            del self._hubs[key]
        # Its own task: the stream is closed even when the last reader's task is cancelled.
        closing = self._closing[key] = asyncio.ensure_future(hub.close())

        def forget(done: asyncio.Future[None]) -> None:
            if self._closing.get(key) is done:
                del self._closing[key]

        closing.add_done_callback(forget)
        await asyncio.shield(closing)

    def open_count(self) -> int:
        return len(self._hubs)
