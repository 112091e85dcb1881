"""``SerialHubs``: one console stream per VM shared by every reader; only writers type; the
stream is opened once and closed when the last reader leaves. The console stream here is an
in-memory pipe standing in for libvirt's (the real one is exercised in
``tests/security/console/test_console_sharing.py``)."""

from __future__ import annotations

import asyncio

import pytest

from corral.errors import Conflict, PermissionDenied
from corral.services.vms.serial_hub import MAX_BACKLOG, SerialHubs


class Pipe:
    """A console: ``output()`` is what the guest prints, ``typed`` what reached it."""

    def __init__(self) -> None:
        self._out: asyncio.Queue[bytes] = asyncio.Queue()
        self.typed = b""
        self.closed = False

    def output(self, data: bytes) -> None:
        self._out.put_nowait(data)

    async def read(self) -> bytes:
        return await self._out.get()

    async def write(self, data: bytes) -> None:
        self.typed += data

    async def close(self) -> None:
        self.closed = True
        self._out.put_nowait(b"")


class Opener:
    def __init__(self) -> None:
        self.opened: list[Pipe] = []

    async def __call__(self) -> Pipe:
        await asyncio.sleep(0.01)  # an RPC: readers arriving meanwhile must share its result
        pipe = Pipe()
        self.opened.append(pipe)
        return pipe


async def _read(tap: object, size: int) -> bytes:
    got = b""
    while len(got) < size:
        got += await asyncio.wait_for(tap.read(), 2)  # type: ignore[attr-defined]
    return got


async def test_readers_share_one_stream_and_only_writers_type() -> None:
    hubs, opener = SerialHubs(), Opener()
    async with (
        hubs.tap("vm", False, opener) as viewer1,
        hubs.tap("vm", False, opener) as viewer2,
        hubs.tap("vm", True, opener) as operator,
    ):
        assert len(opener.opened) == 1
        pipe = opener.opened[0]
        pipe.output(b"login: ")
        for tap in (viewer1, viewer2, operator):
            assert await _read(tap, 7) == b"login: "
        await operator.write(b"root\n")
        with pytest.raises(PermissionDenied, match="view-only"):
            await viewer1.write(b"halt\n")
        assert pipe.typed == b"root\n"
    assert pipe.closed and hubs.open_count() == 0


async def test_the_stream_closes_with_the_last_reader_and_reopens_for_the_next() -> None:
    hubs, opener = SerialHubs(), Opener()
    async with hubs.tap("vm", True, opener):
        async with hubs.tap("vm", False, opener):
            pass
        assert not opener.opened[0].closed  # one reader left
    assert opener.opened[0].closed
    async with hubs.tap("vm", True, opener):
        assert len(opener.opened) == 2
    async with hubs.tap("other", True, opener):
        assert len(opener.opened) == 3


async def test_readers_end_when_the_console_ends() -> None:
    hubs, opener = SerialHubs(), Opener()
    async with hubs.tap("vm", False, opener) as a, hubs.tap("vm", True, opener) as b:
        opener.opened[0].output(b"")  # the VM stopped
        assert await a.read() == b"" and await b.read() == b""
        assert "closed" in a.reason
        async with hubs.tap("vm", True, opener) as c:  # a new reader gets a new stream
            assert len(opener.opened) == 2 and c.reason == ""


async def test_a_slow_reader_is_dropped_alone() -> None:
    hubs, opener = SerialHubs(), Opener()
    async with hubs.tap("vm", False, opener) as slow, hubs.tap("vm", True, opener) as fast:
        chunk = b"x" * 65536
        for _ in range(MAX_BACKLOG // len(chunk) + 1):
            opener.opened[0].output(chunk)
            assert await _read(fast, len(chunk)) == chunk
        assert await slow.read() == b""
        assert "fell behind" in slow.reason
        opener.opened[0].output(b"still here")
        assert await _read(fast, 10) == b"still here"


async def test_a_failed_open_is_tried_again_by_the_next_reader() -> None:
    hubs, opener = SerialHubs(), Opener()
    calls = 0

    async def busy_once() -> Pipe:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Conflict("another client holds the console")
        return await opener()

    with pytest.raises(Conflict):
        async with hubs.tap("vm", False, busy_once):
            pass
    async with hubs.tap("vm", False, busy_once):
        assert len(opener.opened) == 1
    assert hubs.open_count() == 0


async def test_a_reader_cancelled_while_the_stream_opens_leaves_nothing_open() -> None:
    hubs, opener = SerialHubs(), Opener()

    async def reader() -> None:
        async with hubs.tap("vm", False, opener):
            await asyncio.Event().wait()

    task = asyncio.ensure_future(reader())
    await asyncio.sleep(0)  # the stream is opening
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0.05)  # the open finishes after its reader left
    assert len(opener.opened) == 1 and opener.opened[0].closed
    assert hubs.open_count() == 0


async def test_a_new_stream_opens_only_once_the_last_one_is_closed() -> None:
    """libvirt refuses a second stream (no force) while the first is still open: a reader
    arriving as the last one leaves waits for that close."""
    hubs, order = SerialHubs(), []

    class SlowPipe(Pipe):
        async def close(self) -> None:
            await asyncio.sleep(0.05)  # the abort RPC
            order.append("closed")
            await super().close()

    async def opener() -> Pipe:
        order.append("opened")
        return SlowPipe()

    async def leave_soon() -> None:
        async with hubs.tap("vm", True, opener):
            await asyncio.sleep(0.01)

    first = asyncio.ensure_future(leave_soon())
    await asyncio.sleep(0.02)  # the first reader is leaving: its stream is closing
    async with hubs.tap("vm", True, opener):
        assert order == ["opened", "closed", "opened"]
    await first
