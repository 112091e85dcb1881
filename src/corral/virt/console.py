"""A domain's serial console as an async byte pipe (a non-blocking libvirt stream).

The stream's readiness callbacks come from libvirtaio in the loop thread, so reads and writes
here never block and never need a worker thread; only opening and closing (RPCs) do.
"""

from __future__ import annotations

import asyncio
import contextlib

import libvirt

from corral.errors import Conflict, HostError

_WATCH = (
    libvirt.VIR_STREAM_EVENT_READABLE
    | libvirt.VIR_STREAM_EVENT_ERROR
    | libvirt.VIR_STREAM_EVENT_HANGUP
)
_EAGAIN = -2
_READ_SIZE = 64 * 1024
#: What libvirt says when another client holds the console (VIR_ERR_OPERATION_FAILED).
_BUSY = "Active console session exists"


def open_console(dom: libvirt.virDomain, stream: libvirt.virStream, flags: int) -> None:
    """Attach ``stream`` to the domain's first console (worker thread); Conflict when another
    client holds it and ``flags`` lack ``VIR_DOMAIN_CONSOLE_FORCE``."""
    try:
        dom.openConsole(None, stream, flags)
    except libvirt.libvirtError as err:
        if _BUSY in (err.get_error_message() or ""):
            raise Conflict(
                "another client (e.g. `virsh console` on the host) holds the VM's serial "
                "console: close it there, or have an operator open the console (operators "
                "take it over)"
            ) from err
        raise


class SerialConsole:
    """Bytes from and to the guest's first serial port; ``read()`` gives b"" at the end."""

    def __init__(self, stream: libvirt.virStream, what: str) -> None:
        self._stream = stream
        self._what = what
        self._chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self._writable = asyncio.Event()
        self._closed = False
        self._eof = False
        stream.eventAddCallback(_WATCH, self._on_event, None)

    def _on_event(self, stream: libvirt.virStream, events: int, _opaque: object) -> None:
        if events & libvirt.VIR_STREAM_EVENT_WRITABLE:
            self._writable.set()
            stream.eventUpdateCallback(_WATCH)
        if events & libvirt.VIR_STREAM_EVENT_READABLE:
            self._drain()
        if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            self._end()

    def _drain(self) -> None:
        while not self._eof:
            try:
                data = self._stream.recv(_READ_SIZE)
            except libvirt.libvirtError:
                self._end()
                return
            if data == _EAGAIN:
                return
            if not data:
                self._end()
                return
            self._chunks.put_nowait(bytes(data))

    def _end(self) -> None:
        if not self._eof:
            self._eof = True
            self._chunks.put_nowait(b"")
            self._writable.set()

    async def read(self) -> bytes:
        """The next bytes from the guest; b"" once the console is closed (and ever after)."""
        if self._eof and self._chunks.empty():
            return b""
        return await self._chunks.get()

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._eof or self._closed:
                raise HostError(f"{self._what}: the serial console is closed")
            try:
                sent = self._stream.send(bytes(view))
            except libvirt.libvirtError as err:
                self._end()
                raise HostError(f"{self._what}: {err.get_error_message()}") from err
            if sent == _EAGAIN:
                self._writable.clear()
                self._stream.eventUpdateCallback(_WATCH | libvirt.VIR_STREAM_EVENT_WRITABLE)
                await self._writable.wait()
                continue
            view = view[sent:]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(libvirt.libvirtError):
            self._stream.eventRemoveCallback()
        self._end()
        await asyncio.to_thread(_abort_quietly, self._stream)


def _abort_quietly(stream: libvirt.virStream) -> None:
    with contextlib.suppress(libvirt.libvirtError):
        stream.abort()
