"""One libvirt connection that stays up: keep-alive, close callback, reconnect with back-off.

State machine (``ConnectionState``):

    IDLE --connect()--> CONNECTED            first open; failure raises HostUnreachable
    CONNECTED --loss--> RECONNECTING         close callback, keep-alive timeout or a failed call
    RECONNECTING --open ok--> CONNECTED      back-off 0.2 s, doubling, capped at 5 s
    any --close()--> CLOSED
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import logging
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import libvirt

from corral.errors import HostUnreachable, OperationTimeout
from corral.virt._call_pool import (
    CallPool,
    close_quietly,
    handing_back,
    in_background,
    open_for_calls,
)
from corral.virt._errors import describe_open_failure, map_libvirt_errors
from corral.virt._eventloop import ensure_event_loop_impl
from corral.virt._events import DomainEventRegistration
from corral.virt.types import EVENT_CONNECTED, EVENT_DISCONNECTED, DomainEvent

log = logging.getLogger(__name__)
T = TypeVar("T")

KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_COUNT = 3
_KEEPALIVE = (KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT)
BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 5.0
#: A reconnection attempt's bound: a link cut by a firewall that drops packets holds libvirt's
#: connect() for minutes; waiting the full call timeout (60 s) on it kept Corral from seeing the
#: link come back for up to a minute.
RECONNECT_OPEN_S = 10.0

_CLOSE_REASONS = {
    libvirt.VIR_CONNECT_CLOSE_REASON_ERROR: "error",
    libvirt.VIR_CONNECT_CLOSE_REASON_EOF: "eof",
    libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE: "keepalive",
    libvirt.VIR_CONNECT_CLOSE_REASON_CLIENT: "client",
}


#: How long closing a lost connection waits for the calls still inside it before leaving it
#: open instead (a leaked connection costs a socket; closing it under a call crashes Corral).
RELEASE_WAIT_S = 120.0


class _CallsInFlight:
    """Worker threads inside a libvirt call, per ``virConnect``.

    Closing a connection frees its RPC client, including the private event loop a calling
    thread runs while it waits for its reply: a close with a call in flight crashed the manager
    (SIGSEGV in ``g_main_loop_quit`` under ``virNetClientIOEventFD``, seen 5 times in 6 when
    keep-alive dropped a host whose link was cut while power sampling read it). The count is
    kept by the worker threads themselves: a caller that stops waiting (timeout) leaves its
    thread in the call, and the connection must stay open until that thread is out.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._counts: dict[int, int] = {}

    @contextlib.contextmanager
    def call(self, conn: libvirt.virConnect) -> Iterator[None]:
        key = id(conn)
        with self._changed:
            self._counts[key] = self._counts.get(key, 0) + 1
        try:
            yield
        finally:
            with self._changed:
                left = self._counts[key] - 1
                if left:
                    self._counts[key] = left
                else:
                    del self._counts[key]
                    self._changed.notify_all()

    def wait_idle(self, conn: libvirt.virConnect, timeout: float) -> bool:
        """Block until no call is inside ``conn`` (True) or ``timeout`` passed (False)."""
        key = id(conn)
        with self._changed:
            return self._changed.wait_for(lambda: key not in self._counts, timeout)


_IN_FLIGHT = _CallsInFlight()


class ConnectionState(enum.Enum):
    IDLE = "idle"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class ManagedConnection:
    """Owns the ``virConnect``; runs blocking calls in threads with a timeout."""

    def __init__(
        self, name: str, uri: str, call_timeout: float, emit: Callable[[DomainEvent], None]
    ) -> None:
        self.name = name
        self.uri = uri
        self.call_timeout = call_timeout
        self.state = ConnectionState.IDLE
        self._emit = emit
        self._conn: libvirt.virConnect | None = None
        self._event_ids: list[int] = []
        self._events = DomainEventRegistration(name, emit)
        self._reconnect_task: asyncio.Task[None] | None = None
        # The test driver has no RPC client (and a second test:/// connection would be a
        # second, empty driver): its calls share the one connection.
        self._pool = None if uri.startswith("test:") else CallPool()

    # -- opening and closing -----------------------------------------------------------------
    async def connect(self) -> None:
        ensure_event_loop_impl()
        try:
            conn, ids = await self._open()
        except HostUnreachable as err:
            raise HostUnreachable(
                f"cannot connect to libvirt host {self.name} at {self.uri}: {err.message}. "
                "Check that libvirtd runs there, that the URI is right and that Corral may use "
                f"it; `virsh -c '{self.uri}' version` on the Corral server shows libvirt's "
                "own words."
            ) from err
        self._install(conn, ids)

    async def _open(self, limit: float | None = None) -> tuple[libvirt.virConnect, list[int]]:
        """Open and subscribe in a thread of its own (every step is a blocking RPC, and an
        attempt that gives up leaves its thread in connect() for as long as TCP tries: never
        one of the default executor's few)."""

        def job() -> tuple[libvirt.virConnect, list[int]]:
            try:
                conn = libvirt.open(self.uri)
            except libvirt.libvirtError as err:
                raise HostUnreachable(describe_open_failure(err)) from err
            try:
                with contextlib.suppress(libvirt.libvirtError):  # local drivers: no keep-alive
                    conn.setKeepAlive(KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT)
                with contextlib.suppress(libvirt.libvirtError):  # test driver: no close callback
                    conn.registerCloseCallback(self._on_close, None)
                return conn, self._events.register(conn)
            except libvirt.libvirtError as err:
                _release(conn, [])
                raise HostUnreachable(describe_open_failure(err)) from err

        limit = self.call_timeout if limit is None else min(limit, self.call_timeout)
        opening = asyncio.ensure_future(_in_own_thread(job))
        try:
            async with asyncio.timeout(limit):
                return await asyncio.shield(opening)
        except TimeoutError as err:
            # The thread may still open it: close what it opens, whenever that is.
            opening.add_done_callback(_release_opened)
            raise HostUnreachable(f"no answer within {limit:g} s") from err

    def _install(self, conn: libvirt.virConnect, event_ids: list[int]) -> None:
        self._conn = conn
        self._event_ids = event_ids
        self.state = ConnectionState.CONNECTED

    async def close(self) -> None:
        self.state = ConnectionState.CLOSED
        if self._pool is not None:
            self._pool.close()
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.to_thread(_release, conn, self._event_ids)

    # -- losing and regaining the connection --------------------------------------------------
    def _on_close(self, conn: libvirt.virConnect, reason: int, _opaque: object) -> None:
        # libvirt calls this from inside its event dispatch with the connection's locks held:
        # any libvirt call made right here deadlocks the loop thread. Act on the next turn.
        def later() -> None:
            if conn is self._conn or self._conn is None:
                self.connection_lost(_CLOSE_REASONS.get(reason, str(reason)))

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # Called from a worker thread, inside the call that found the connection dead:
            # that call's own failure reports the loss. Acting from here too crashed libvirt
            # (a segfault in libvirt.so, seen once in a full test run).
            return
        loop.call_soon(later)

    def connection_lost(self, reason: str) -> None:
        """Start reconnecting (once) unless closed; called in the loop thread."""
        if self.state is not ConnectionState.CONNECTED:
            return
        log.warning("connection to host %s (%s) lost: %s", self.name, self.uri, reason)
        self.state = ConnectionState.RECONNECTING
        if self._pool is not None:
            self._pool.drop_all()
        conn, self._conn = self._conn, None
        if conn is not None:
            # Deregistering and closing a dead connection may block on its socket (or on
            # libvirt's locks): never in the loop thread.
            in_background(_release, conn, self._event_ids)
        self._emit(DomainEvent(self.name, None, None, EVENT_DISCONNECTED, "disconnected", reason))
        self._reconnect_task = asyncio.create_task(self._reconnect(), name=f"reconnect {self.name}")

    async def _reconnect(self) -> None:
        delay = BACKOFF_FIRST_S
        while self.state is ConnectionState.RECONNECTING:
            try:
                conn, ids = await self._open(RECONNECT_OPEN_S)
            except HostUnreachable as err:
                log.info("host %s still unreachable (%s); retry in %.1f s", self.name, err, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            if self.state is not ConnectionState.RECONNECTING:
                in_background(_release, conn, ids)
                return
            self._install(conn, ids)
            log.info("reconnected to host %s", self.name)
            self._emit(DomainEvent(self.name, None, None, EVENT_CONNECTED, "connected"))
        self._reconnect_task = None

    # -- calls -------------------------------------------------------------------------------
    def require(self) -> libvirt.virConnect:
        conn = self._conn
        if conn is None or self.state is not ConnectionState.CONNECTED:
            raise HostUnreachable(
                f"host {self.name} is not connected ({self.state.value}); Corral keeps "
                "reconnecting, retry in a few seconds"
            )
        return conn

    async def run(
        self, what: str, fn: Callable[[libvirt.virConnect], T], *, bounded: bool = True
    ) -> T:
        """``fn(conn)`` in a worker thread, errors mapped, bounded by ``call_timeout`` unless
        ``bounded`` is False (long transfers that report progress instead). Over RPC the thread
        has a connection to itself (see ``_call_pool``): one of the pool's, or for an unbounded
        call one it opens and closes."""
        primary = self.require()
        limit = self.call_timeout if bounded else None
        try:
            async with asyncio.timeout(limit):
                if self._pool is None:
                    return await self._call(what, primary, fn, bounded)
                if not bounded:
                    return await _in_own_thread(self._own_connection_job(what, fn))
                return await self._pooled(what, fn)
        except TimeoutError as err:
            raise OperationTimeout(
                f"{what}: host {self.name} did not answer within {self.call_timeout:g} s; "
                "check the host's load and libvirtd"
            ) from err
        except HostUnreachable:
            if primary is self._conn:
                self.connection_lost("call failed")
            raise

    async def run_on_primary(self, what: str, fn: Callable[[libvirt.virConnect], T]) -> T:
        """``fn`` on the connection that carries events and streams (a console's stream must
        be opened on the connection it was made on); bounded like ``run``."""
        primary = self.require()
        try:
            async with asyncio.timeout(self.call_timeout):
                return await self._call(what, primary, fn, True)
        except TimeoutError as err:
            raise OperationTimeout(
                f"{what}: host {self.name} did not answer within {self.call_timeout:g} s; "
                "check the host's load and libvirtd"
            ) from err

    @staticmethod
    async def _call(
        what: str, conn: libvirt.virConnect, fn: Callable[[libvirt.virConnect], T], bounded: bool
    ) -> T:
        def job() -> T:
            with _IN_FLIGHT.call(conn), map_libvirt_errors(what):
                return fn(conn)

        return await (asyncio.to_thread(job) if bounded else _in_own_thread(job))

    async def _pooled(self, what: str, fn: Callable[[libvirt.virConnect], T]) -> T:
        """``fn`` on a connection borrowed from the pool, in a thread started at once (a job
        queued in an executor can be cancelled before it runs and would never give the
        connection back)."""
        pool = self._pool
        assert pool is not None
        lent, generation = await pool.borrow()
        holder: list[libvirt.virConnect | None] = [lent]
        hand_back = handing_back(
            asyncio.get_running_loop(),
            lambda healthy: pool.give_back(holder[0], generation, healthy),
        )

        def job() -> T:
            healthy = True  # an error of the call itself (not found, refused) keeps the link
            try:
                if holder[0] is None:
                    holder[0] = open_for_calls(self.uri, _KEEPALIVE)
                with map_libvirt_errors(what):
                    return fn(holder[0])
            except HostUnreachable:
                healthy = False
                raise
            finally:
                hand_back(healthy)

        return await _in_own_thread(job)

    def _own_connection_job(
        self, what: str, fn: Callable[[libvirt.virConnect], T]
    ) -> Callable[[], T]:
        def job() -> T:
            conn = open_for_calls(self.uri, _KEEPALIVE)
            try:
                with map_libvirt_errors(what):
                    return fn(conn)
            finally:
                close_quietly(conn)

        return job


async def _in_own_thread(job: Callable[[], T]) -> T:
    """``job`` in a thread of its own. Unbounded calls (an import of gigabytes, a migration)
    hold their thread for minutes: in asyncio's default pool (six threads on two cores) ten
    imports took every thread, and every short call queued behind them, the database's too:
    task leases were not renewed in time and other instances took over live work."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.done():  # the waiter has gone (cancelled)
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = context.run(job)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiter, as to_thread does
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="libvirt-long-call", daemon=True).start()
    return await done


def _release_opened(opening: asyncio.Future[tuple[libvirt.virConnect, list[int]]]) -> None:
    """Close a connection opened after its opener stopped waiting (loop thread)."""
    if opening.cancelled() or opening.exception() is not None:
        return
    conn, ids = opening.result()
    in_background(_release, conn, ids)


def _release(conn: libvirt.virConnect, event_ids: list[int]) -> None:
    """Deregister and close (worker thread) once no call is inside the connection any more;
    errors of a dead connection do not matter."""
    if not _IN_FLIGHT.wait_idle(conn, RELEASE_WAIT_S):
        log.warning(
            "a libvirt connection was left open: calls were still inside it %g s after it "
            "was given up (closing it under them would crash Corral)",
            RELEASE_WAIT_S,
        )
        return
    DomainEventRegistration.deregister(conn, event_ids)
    with contextlib.suppress(libvirt.libvirtError):
        conn.unregisterCloseCallback()
    with contextlib.suppress(libvirt.libvirtError):
        conn.close()
