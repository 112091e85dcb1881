"""Connections for calls to one host, each used by one thread at a time.

libvirt's RPC client (9.0, Debian 12) lets several threads share one connection by "passing the
buck": one thread polls the socket for all of them. Each poll round attaches a GSource whose
callback data lives on the polling thread's stack, and a round that another thread ends early
(a second caller, a keep-alive ping) leaves that source attached. When the polling thread then
leaves with an error (a cut link that keep-alive gave up on) and hands the buck to a thread that
was waiting, that thread's poll fires the stale sources into a dead stack frame: Corral died in
``virNetClientIOEventFD`` (a NULL ``data->client``) each time a cut link came back while calls
were waiting on it. A connection that only ever has one calling thread never passes the buck,
so every call borrows a connection of its own from this pool; calls that run for minutes (an
import, a migration) open one of their own instead of holding one of the pool's.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

import libvirt

from corral.errors import HostUnreachable
from corral.virt._errors import describe_open_failure

#: Calls to one host at once; more wait for a free connection (a few ms each here).
POOL_SIZE = 4


def open_for_calls(uri: str, keepalive: tuple[int, int]) -> libvirt.virConnect:
    """A connection for calls only (no events, no close callback), with keep-alive so that a
    call on a dead link fails instead of waiting for TCP to give up. Worker thread."""
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as err:
        raise HostUnreachable(describe_open_failure(err)) from err
    with contextlib.suppress(libvirt.libvirtError):  # local drivers have no keep-alive
        conn.setKeepAlive(*keepalive)
    return conn


def close_quietly(conn: libvirt.virConnect) -> None:
    """Close a connection no thread is in any more (worker thread); a dead one's errors do not
    matter."""
    with contextlib.suppress(libvirt.libvirtError):
        conn.close()


class CallPool:
    """Idle connections and the right to open one more (loop thread only).

    ``borrow`` hands out an idle connection, or None with the right to open one (the calling
    thread opens it: a caller that stops waiting must not leave an opened connection behind).
    The lender gets it back through ``give_back`` once the thread is out of libvirt, which may
    be long after its caller stopped waiting. ``drop_all`` (the host was lost) closes the idle
    ones and retires those still lent, which are closed when they come back.
    """

    def __init__(self, size: int = POOL_SIZE) -> None:
        self._slots = asyncio.Semaphore(size)
        self._idle: list[libvirt.virConnect] = []
        self._generation = 0
        self._closed = False

    async def borrow(self) -> tuple[libvirt.virConnect | None, int]:
        """(an idle connection or None, the generation to give it back under)."""
        await self._slots.acquire()
        conn = self._idle.pop() if self._idle else None
        return conn, self._generation

    def give_back(self, conn: libvirt.virConnect | None, generation: int, healthy: bool) -> None:
        """A thread is out of ``conn`` (None: it could not open one)."""
        if conn is not None:
            if healthy and generation == self._generation and not self._closed:
                self._idle.append(conn)
            else:
                _close_later(conn)
        self._slots.release()

    def drop_all(self) -> None:
        """The host was lost: its connections are dead or about to be."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for conn in idle:
            _close_later(conn)

    def close(self) -> None:
        self._closed = True
        self.drop_all()


def _close_later(conn: libvirt.virConnect) -> None:
    in_background(close_quietly, conn)


def in_background(fn: Callable[..., object], *args: object) -> None:
    """``fn(*args)`` in a daemon thread of its own. Closing a dead connection may block on its
    socket for as long as TCP tries: never in the loop thread, and never in the default
    executor, whose few threads the database's calls need (five lost connections closing
    there at once stalled every request)."""
    threading.Thread(target=fn, args=args, name="libvirt-close", daemon=True).start()


def handing_back(
    loop: asyncio.AbstractEventLoop, give_back: Callable[[bool], None]
) -> Callable[[bool], None]:
    """``give_back`` called from a worker thread, run in the loop thread (dropped if the loop
    has closed meanwhile: nobody is left to lend the connection to)."""

    def hand_back(healthy: bool) -> None:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(give_back, healthy)

    return hand_back
