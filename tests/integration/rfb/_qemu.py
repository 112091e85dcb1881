"""A QEMU process with a VNC server on a UNIX socket, and a tiny QMP client to control it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


class QMP:
    """Just enough QMP: capabilities negotiation, then one command at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, path: Path) -> QMP:
        reader, writer = await asyncio.open_unix_connection(str(path))
        qmp = cls(reader, writer)
        await qmp._read()  # greeting
        await qmp.execute("qmp_capabilities")
        return qmp

    async def _read(self) -> dict[str, Any]:
        while True:
            line = await asyncio.wait_for(self._reader.readline(), 30)
            if not line:
                raise ConnectionError("QMP closed")
            message: dict[str, Any] = json.loads(line)
            if "event" not in message:
                return message

    async def execute(self, command: str, **arguments: Any) -> Any:
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self._writer.write(json.dumps(request).encode() + b"\n")
        await self._writer.drain()
        reply = await self._read()
        if "error" in reply:
            raise RuntimeError(f"QMP {command}: {reply['error']}")
        return reply.get("return")

    async def screendump(self, path: Path) -> npt.NDArray[np.uint8]:
        """QEMU's own view of the display, as ``(h, w, 3)`` RGB."""
        await self.execute("screendump", filename=str(path))
        return read_ppm(path)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


def read_ppm(path: Path) -> npt.NDArray[np.uint8]:
    data = path.read_bytes()
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:  # magic, width, height, maxval
        while data[pos : pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    assert fields[0] == b"P6" and fields[3] == b"255"
    w, h = int(fields[1]), int(fields[2])
    pixels = np.frombuffer(data, np.uint8, w * h * 3, pos + 1)
    return pixels.reshape(h, w, 3)


@contextlib.contextmanager
def qemu_vnc(
    workdir: Path, extra: list[str] | None = None, vnc_options: str = ""
) -> Iterator[tuple[Path, Path]]:
    """Run a TCG QEMU with VNC and QMP on UNIX sockets; yields (vnc socket, qmp socket)."""
    vnc = workdir / "vnc.sock"
    qmp = workdir / "qmp.sock"
    serial = workdir / "serial.sock"
    argv = [
        "qemu-system-x86_64", "-accel", "tcg", "-display", "none", "-m", "256",
        "-vnc", f"unix:{vnc}{vnc_options}", "-qmp", f"unix:{qmp},server,nowait",
        "-serial", f"unix:{serial},server,nowait", "-no-reboot", *(extra or []),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (vnc.exists() and qmp.exists()):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"QEMU did not start: {err}")
            time.sleep(0.05)
        yield vnc, qmp
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


class SerialShell:
    """The guest's shell on ttyS0 (a QEMU UNIX socket chardev)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.seen = b""
        self._count = 0

    @classmethod
    async def connect(cls, qmp_socket: Path) -> SerialShell:
        reader, writer = await asyncio.open_unix_connection(str(qmp_socket.parent / "serial.sock"))
        return cls(reader, writer)

    async def expect(self, needle: bytes, within: float = 120) -> bytes:
        """Read until ``needle`` appears; returns everything read so far."""
        async with asyncio.timeout(within):
            while needle not in self.seen:
                chunk = await self._reader.read(4096)
                if not chunk:
                    raise ConnectionError("serial console closed")
                self.seen += chunk
        return self.seen

    async def run(self, command: str, within: float = 60) -> bytes:
        """Run a shell command; returns what the console printed until it finished.

        The end marker is computed by the shell (``$((n+1))``) so the echoed command line
        itself never contains it.
        """
        self._count += 1
        marker = f"CMD-DONE-{self._count + 1000}".encode()
        start = len(self.seen)
        line = f"{command}; echo CMD-DONE-$(({self._count} + 1000))\n"
        self._writer.write(line.encode())
        await self._writer.drain()
        async with asyncio.timeout(within):
            while marker not in self.seen[start:]:
                chunk = await self._reader.read(4096)
                if not chunk:
                    raise ConnectionError("serial console closed")
                self.seen += chunk
        return self.seen[start:]

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
