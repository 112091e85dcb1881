"""A running VM's memory, changed through its virtio balloon — and only said to be changed once
the guest has it.

libvirt's live memory change is a request to the guest's balloon driver: it returns at once,
and a guest without the driver (a firmware, an OS without ``virtio_balloon``, a driver that
was unloaded) never follows. So the change is watched: the new size goes into the definition
(``<currentMemory>``, what the next start gives) only when the guest reached it; otherwise the
balloon is asked back to where the guest is, the definition keeps its size, and the caller
gets a Conflict that says what the guest has.
"""

from __future__ import annotations

import asyncio
import logging
import time

from corral.errors import Conflict, CorralError
from corral.virt import LibvirtHost

log = logging.getLogger(__name__)

#: A guest whose memory has not moved for this long is taken as not following the balloon.
#: A guest with a driver starts moving within a fraction of a second (the balloon's size is
#: reported at most once a second).
STALL_S = 5.0
#: The longest a guest that keeps moving may take to reach the new size.
LIMIT_S = 60.0
_POLL_S = 0.2


async def change_memory(host: LibvirtHost, vm: str, uuid: str, target_mib: int) -> None:
    """Give the running VM ``target_mib`` MiB now and from its next start on; Conflict (and the
    VM as it was) when its guest does not take it."""
    before = await host.changes.guest_memory_mib(uuid)
    if before != target_mib:
        await host.changes.set_balloon(uuid, target_mib)
        reached = await _watch(host, uuid, before, target_mib)
        if reached != target_mib:
            await _ask_back(host, uuid, before)
            raise Conflict(_not_taken(vm, before, reached, target_mib))
    try:
        await host.changes.keep_memory(uuid, target_mib)
    except CorralError:
        await _ask_back(host, uuid, before)
        raise


async def _watch(host: LibvirtHost, uuid: str, before: int, target: int) -> int:
    """What the guest has once it reached ``target``, stopped moving, or ran out of time."""
    start = moved = time.monotonic()
    last = before
    while True:
        now = await host.changes.guest_memory_mib(uuid)
        if now == target:
            return now
        clock = time.monotonic()
        if now != last:
            last, moved = now, clock
        if clock - moved >= STALL_S or clock - start >= LIMIT_S:
            return now
        await asyncio.sleep(_POLL_S)


async def _ask_back(host: LibvirtHost, uuid: str, mib: int) -> None:
    """Ask the balloon back to ``mib`` MiB, so a guest that follows late does not shrink or
    grow behind the caller's back after being told nothing changed."""
    try:
        await host.changes.set_balloon(uuid, mib)
    except CorralError as exc:
        log.error("could not ask the balloon of %s back to %d MiB: %s", uuid, mib, exc.message)


def _not_taken(vm: str, before: int, reached: int, target: int) -> str:
    if reached == before:
        what = (
            f"VM {vm!r} did not take the memory change live: its guest did not answer the "
            f"balloon within {STALL_S:g} s (no virtio_balloon driver in it?) and still has "
            f"{before} MiB"
        )
    else:
        what = (
            f"VM {vm!r} took the memory change only in part: its guest went from {before} to "
            f"{reached} MiB and stopped short of {target} MiB (it may be using that memory); "
            f"it was asked back to {before} MiB"
        )
    return (
        f"{what}. Nothing changed: ask for mode next_start to give it {target} MiB from its "
        "next start, or shut it down and edit it"
    )
