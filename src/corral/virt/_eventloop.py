"""libvirt's event loop, run by asyncio through ``libvirtaio``.

libvirt calls the registered event functions from whichever thread is inside a libvirt call; Corral
makes its blocking libvirt calls in worker threads (``asyncio.to_thread``). libvirtaio touches the
asyncio loop directly (``add_reader``, ``ensure_future``), which asyncio only allows from the loop's
own thread, so :class:`_ThreadSafeImpl` hands such calls over with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import libvirt
import libvirtaio

_lock = threading.Lock()
_impl: _ThreadSafeImpl | None = None


class _ThreadSafeImpl(libvirtaio.virEventAsyncIOImpl):  # type: ignore[misc]
    """libvirtaio's implementation, with every loop operation marshalled to the loop thread."""

    def _in_loop(self, func: Callable[..., Any], *args: Any) -> None:
        loop: asyncio.AbstractEventLoop = self.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            func(*args)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(func, *args)

    def _add_handle(self, fd: int, event: int, cb: Any, opaque: Any) -> int:
        callback = libvirtaio.FDCallback(
            self, cb, opaque, descriptor=self.descriptors[fd], event=event
        )
        self.callbacks[callback.iden] = callback
        callback.descriptor.callbacks[callback.iden] = callback
        self._in_loop(callback.descriptor.update)
        self._in_loop(self._pending_inc)
        return int(callback.iden)

    def _update_handle(self, watch: int, event: int) -> None:
        callback = self.callbacks.get(watch)
        if isinstance(callback, libvirtaio.FDCallback):
            callback.event = event
            self._in_loop(callback.descriptor.update)

    def _remove_handle(self, watch: int) -> int:
        callback = self.callbacks.pop(watch, None)
        if not isinstance(callback, libvirtaio.FDCallback):
            return -1
        descriptor = callback.descriptor
        descriptor.callbacks.pop(watch, None)
        if not descriptor.callbacks:
            self.descriptors.pop(descriptor.fd, None)
        self._in_loop(descriptor.update)
        self._in_loop(callback.close)
        return 0

    def _add_timeout(self, timeout: int, cb: Any, opaque: Any) -> int:
        callback = libvirtaio.TimeoutCallback(self, cb, opaque)
        self.callbacks[callback.iden] = callback
        self._in_loop(callback.update, timeout)
        self._in_loop(self._pending_inc)
        return int(callback.iden)

    def _update_timeout(self, timer: int, timeout: int) -> None:
        callback = self.callbacks.get(timer)
        if isinstance(callback, libvirtaio.TimeoutCallback):
            self._in_loop(callback.update, timeout)

    def _remove_timeout(self, timer: int) -> int:
        callback = self.callbacks.pop(timer, None)
        if callback is None:
            return -1
        self._in_loop(callback.close)
        return 0

    def rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Move every watch and timer to ``loop`` (the previous loop has been closed)."""
        self.loop = loop
        for descriptor in list(self.descriptors.values()):
            descriptor.update()
        for callback in list(self.callbacks.values()):
            if isinstance(callback, libvirtaio.TimeoutCallback):
                callback._task = None
                callback.update(callback.timeout)


def _ignore_libvirt_error(_ctx: object, _err: object) -> None:
    """libvirt prints every error to stderr by default; Corral reports them as exceptions."""


def ensure_event_loop_impl() -> None:
    """Register libvirt's event loop with the running asyncio loop; idempotent.

    libvirt allows one event implementation per process, registered before any connection is
    opened. If that loop has since stopped (one loop per test module, or ``asyncio.run`` in a
    test), the implementation moves to the running loop so connections opened later still get
    their events.
    """
    global _impl
    loop = asyncio.get_running_loop()
    with _lock:
        if _impl is None:
            libvirt.registerErrorHandler(_ignore_libvirt_error, None)
            _impl = _ThreadSafeImpl(loop=loop).register()
            libvirtaio._current_impl = _impl
        elif _impl.loop is not loop and (_impl.loop.is_closed() or not _impl.loop.is_running()):
            # A loop that no longer runs (closed, or merely stopped) delivers nothing: events
            # of connections opened now must reach the loop that runs.
            _impl.rebind(loop)
