"""A TCP forwarder a test can cut: a database that goes away without stopping the suite's one.

Runs an asyncio server in a thread of its own, forwarding each connection to ``upstream``.
``cut()`` resets every open connection and answers new ones by closing them at once (a
client sees "server closed the connection unexpectedly"), until ``restore()``. ``silence()``
leaves new connections unanswered instead (a server behind a network cut that sends nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

_CHUNK = 64 * 1024

T = TypeVar("T")


class CuttableForwarder:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self._cut = False
        self._silent = False
        self._server: asyncio.Server | None = None
        self.port = 0

    def start(self) -> None:
        self._thread.start()
        self._server = self._call(self._serve())
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.cut()
        server = self._server
        if server is not None:
            server.close()
            self._call(server.wait_closed())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def cut(self) -> None:
        """Reset every forwarded connection; refuse new ones until :meth:`restore`."""
        self._call(self._cut_all())

    def silence(self) -> None:
        """Accept new connections and never answer them, until :meth:`restore`."""
        self._silent = True

    def restore(self) -> None:
        self._cut = self._silent = False

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _serve(self) -> asyncio.Server:
        return await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def _cut_all(self) -> None:
        self._cut = True
        for writer in list(self._writers):
            writer.transport.abort()  # RST, not a polite FIN: the connection is simply gone
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        if self._silent:
            self._writers.add(writer)  # open, unanswered, until a cut or the stop
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            for end in (writer, up_writer):
                self._writers.discard(end)
                end.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
        # One side ended: end the other, so neither end waits on a half-closed pair.
        writer.transport.abort()


@contextlib.contextmanager
def forwarding(host: str, port: int) -> Iterator[CuttableForwarder]:
    forwarder = CuttableForwarder(host, port)
    forwarder.start()
    try:
        yield forwarder
    finally:
        forwarder.stop()
