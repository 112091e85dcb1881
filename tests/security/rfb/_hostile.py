"""A scripted hostile VNC server: it plays bytes from a script, then keeps the socket open."""

from __future__ import annotations

import asyncio
import contextlib
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def play(*chunks: bytes, close: bool = False) -> Script:
    """A script that sends ``chunks`` and then either closes or holds the connection open."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        if close:
            writer.close()
            return
        while await reader.read(65536):  # hold the connection until the client leaves
            pass

    return script


@contextlib.asynccontextmanager
async def hostile_server(tmp_path: Path, script: Script) -> AsyncIterator[str]:
    path = tmp_path / "hostile.sock"
    tasks: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        writers.append(writer)
        with contextlib.suppress(ConnectionError):
            await script(reader, writer)
        writer.close()

    server = await asyncio.start_unix_server(on_connect, str(path))
    try:
        yield str(path)
    finally:
        server.close()
        # Closing the sockets ends every script (reads see EOF, writes fail).
        for writer in writers:
            writer.transport.abort()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)


@contextlib.contextmanager
def peak_memory() -> Iterator[list[int]]:
    """Measure the peak of traced allocations (numpy reports its buffers to tracemalloc)."""
    result: list[int] = []
    tracemalloc.start()
    try:
        yield result
    finally:
        result.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
