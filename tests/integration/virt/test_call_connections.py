"""Calls to a host over libvirt's RPC client: one thread per connection at a time.

libvirt 9.0's client crashed Corral (SIGSEGV in ``virNetClientIOEventFD``) when a cut link came
back while several threads were waiting in calls on one connection; each call now has a
connection to itself (``corral.virt._call_pool``)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import libvirt
import pytest

from corral.testbed.private_libvirtd import PrivateLibvirtd
from corral.virt._call_pool import POOL_SIZE
from corral.virt._connection import ManagedConnection

pytestmark = pytest.mark.asyncio(loop_scope="module")


class _Inside:
    """Which connections worker threads are in, and the most threads ever in one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now: Counter[int] = Counter()
        self.most = 0
        self.seen: set[int] = set()
        self._kept: list[libvirt.virConnect] = []  # ids stay unique while these live

    def call(self, conn: libvirt.virConnect, hold_s: float) -> str:
        key = id(conn)
        with self._lock:
            self.now[key] += 1
            self.most = max(self.most, self.now[key])
            self.seen.add(key)
            self._kept.append(conn)
        try:
            threading.Event().wait(hold_s)
            return str(conn.getHostname())
        finally:
            with self._lock:
                self.now[key] -= 1


async def test_concurrent_calls_never_share_a_connection(virt_libvirtd: PrivateLibvirtd) -> None:
    calls = ManagedConnection("h1", virt_libvirtd.uri, 30, lambda _e: None)
    await calls.connect()
    inside = _Inside()
    try:
        results = await asyncio.gather(
            *(calls.run("read", lambda c: inside.call(c, 0.3)) for _ in range(3 * POOL_SIZE))
        )
        assert len(set(results)) == 1
        assert inside.most == 1, "two threads were inside one connection at once"
        assert 2 <= len(inside.seen) <= POOL_SIZE, inside.seen
        assert id(calls.require()) not in inside.seen, "calls went to the events connection"

        pooled = set(inside.seen)
        await calls.run("a long one", lambda c: inside.call(c, 0), bounded=False)
        assert len(inside.seen - pooled) == 1, "an unbounded call borrowed a pooled connection"

        # The host lost and found again: the old pooled connections are not lent any more.
        calls.connection_lost("test")
        async with asyncio.timeout(30):
            while True:
                try:
                    calls.require()
                    break
                except Exception:  # noqa: BLE001 - reconnecting, as the message says
                    await asyncio.sleep(0.1)
        before = set(inside.seen)
        await calls.run("read again", lambda c: inside.call(c, 0))
        assert inside.seen - before, "a connection from before the loss was lent again"
    finally:
        await calls.close()
