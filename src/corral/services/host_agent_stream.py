"""One host-agent call with a body: the request line, then raw bytes pushed as they come
(an image uploaded into an nfs storage domain goes to the agent's ``nfs.write`` this way,
never staged on the host's disk), then the agent's one reply.

    stream = await agents.open_stream("h1", "nfs.write", args, timeout_s=60)
    try:
        async for block in blocks:
            await stream.write(block)
        result = await stream.finish()
    except BaseException:
        await stream.abort()
        raise

``abort`` ends the body early and waits (bounded) for the agent to answer: the agent sees the
data end short, removes what it began and says so; only a silent agent is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from corral.errors import CorralError, HostError, OperationTimeout

#: ``(what, raw reply, exit status) -> result``: how the caller reads the agent's answer.
ReplyReader = Callable[[str, bytes, int], dict[str, Any]]


class AgentStream:
    """A running agent process (local, or ``ssh`` to the host) fed through its stdin."""

    def __init__(
        self, what: str, process: asyncio.subprocess.Process, read: ReplyReader, timeout_s: float
    ) -> None:
        self.what = what
        self._process = process
        self._read = read
        self._timeout_s = timeout_s
        #: Bytes the agent has taken so far.
        self.done = 0

    @classmethod
    async def start(
        cls, what: str, argv: list[str], request: bytes, read: ReplyReader, timeout_s: float
    ) -> AgentStream:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        stream = cls(what, process, read, timeout_s)
        await stream._send(request + b"\n")
        return stream

    async def _send(self, data: bytes) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(data)
            async with asyncio.timeout(self._timeout_s):
                await stdin.drain()
        except TimeoutError as err:
            raise OperationTimeout(
                f"{self.what}: the agent took no data for {self._timeout_s:g} s"
            ) from err
        except (BrokenPipeError, ConnectionResetError) as err:
            # The agent stopped reading: its reply says why.
            raise HostError(f"{self.what}: {await self._stopped()}") from err

    async def _stopped(self) -> str:
        try:
            self._read(self.what, *await self._reply())
        except CorralError as exc:
            return exc.message
        return "the agent stopped reading before the end of the data"

    async def write(self, data: bytes) -> None:
        await self._send(data)
        self.done += len(data)

    async def _reply(self) -> tuple[bytes, int]:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        with contextlib.suppress(OSError):
            stdin.close()
        try:
            async with asyncio.timeout(self._timeout_s):
                raw = await stdout.read()
                status = await self._process.wait()
        except TimeoutError as err:
            self._kill()
            raise OperationTimeout(f"{self.what}: no answer within {self._timeout_s:g} s") from err
        return raw, status

    async def finish(self) -> dict[str, Any]:
        """The body is complete: the agent's result (a Corral error if it failed)."""
        return self._read(self.what, *await self._reply())

    async def abort(self) -> None:
        """End the body early; the agent removes what it began. Never raises."""
        with contextlib.suppress(CorralError):
            await self._reply()
        self._kill()
        await self._process.wait()

    def _kill(self) -> None:
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
