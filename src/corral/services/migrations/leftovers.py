"""What a migration must not leave behind.

- A migration that fails or is cancelled: for a storage copy libvirt created the VM's disks
  in the destination's pool before it copied a byte, and keeps them when the job ends without
  the VM (a later copy to that host would then be refused); the incoming QEMU began a serial
  log there too. The migration recorded what it would make there — disk paths no pool of the
  destination held when it was checked, a log only if there was none — and deletes exactly
  that, once no domain on the destination uses it.
- A migration that completed: the source's ``NAME.serial.log`` (the guest's console as it ran
  there). The log goes with the running QEMU: the destination's begins when the VM arrives
  (QEMU there appends to a file of its own host), and ``corral vm log`` reads the log of the
  host the VM is on. A stale log left on the source would be appended to if the VM came back,
  or inherited by a new VM of that name there. It is not joined to the destination's: that
  file is being appended to by the destination's log daemon, and a copy made before the move
  would miss what the guest printed while it moved. When the source and the destination share
  their pool directory, the two logs are one file and it stays.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid as uuids
from dataclasses import dataclass, field

from corral.errors import CorralError, NotFound
from corral.virt import LibvirtHost

log = logging.getLogger(__name__)

#: How long libvirt may take to remove the incoming domain from the destination after the
#: migration failed (it has done so before migrateToURI3 returns: this is a safety net).
GONE_WAIT_S = 30.0
POLL_S = 0.5


@dataclass
class Removal:
    """What became of the disks a failed storage copy made on the destination (paths deleted;
    those kept, with why)."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    problem: str | None = None

    def sentence(self, destination: str) -> str:
        """How the task's message ends ("" when there was nothing to remove)."""
        parts = []
        if self.removed:
            parts.append(
                f"the disk copies it had made on {destination} were deleted "
                f"({', '.join(self.removed)})"
            )
        if self.kept or self.problem:
            why = f" ({self.problem})" if self.problem else ""
            names = ", ".join(self.kept) or "its disk copies"
            parts.append(
                f"{names} stay on {destination}{why}: `corral volume list --host {destination}`, "
                f"then `corral volume delete {destination} VOLUME`"
            )
        return "; ".join(parts)


async def _domain_gone(host: LibvirtHost, uuid: str) -> bool:
    """Whether the domain left ``host`` (waits at most ``GONE_WAIT_S``)."""
    deadline = time.monotonic() + GONE_WAIT_S
    while time.monotonic() < deadline:
        try:
            await host.get_domain(uuid)
        except NotFound:
            return True
        await asyncio.sleep(POLL_S)
    return False


async def remove_made(
    destination: LibvirtHost, uuid: str, paths: list[str], log_of: str | None
) -> Removal:
    """Delete from ``destination``'s pool the volumes at ``paths`` that no domain there uses,
    and VM ``log_of``'s serial log (None: it was there before the migration)."""
    result = Removal()
    try:
        # A domain still there may be writing its log; its disks are kept below as used.
        if await _domain_gone(destination, uuid) and log_of is not None:
            await destination.consoles.delete_serial_log(log_of)
        users = await destination.disk_users()
        for volume in await destination.storage.list_volumes():
            if volume.path not in paths:
                continue
            if volume.path in users:
                result.kept.append(
                    f"{volume.name} (used by {', '.join(sorted(users[volume.path]))})"
                )
                continue
            await destination.storage.delete_volume(volume.name)
            result.removed.append(volume.path)
    except CorralError as exc:
        result.problem = exc.message
        result.kept = [p for p in paths if p not in result.removed]
    return result


async def no_log_yet(destination: LibvirtHost, vm: str) -> bool:
    """Whether ``destination`` holds no serial log of VM ``vm`` (so the migration's QEMU would
    begin one); False when that cannot be told: then nothing is deleted."""
    try:
        return not await destination.consoles.has_serial_log(vm)
    except CorralError as exc:
        log.info("serial log of %s on %s: %s", vm, destination.name, exc.message)
        return False


async def shares_pool(source: LibvirtHost, destination: LibvirtHost) -> bool:
    """Whether the two hosts' pools are one directory (shared storage): a probe volume made
    on the destination is visible to the source."""
    probe = f"_probe.{uuids.uuid4().hex}"
    await destination.storage.create_blank_volume(probe, 0)
    try:
        return await source.storage.find_volume(probe) is not None
    finally:
        await destination.storage.delete_volume(probe)


async def drop_source_log(source: LibvirtHost, destination: LibvirtHost, vm: str) -> bool:
    """Delete VM ``vm``'s serial log on ``source`` after it moved (see the module's
    docstring); best effort: True when it went."""
    try:
        if await shares_pool(source, destination):
            return False
        await source.consoles.delete_serial_log(vm)
    except CorralError as exc:
        log.warning("the serial log of %s stays on %s: %s", vm, source.name, exc.message)
        return False
    return True
