"""Editing a VM: vCPUs, memory, their maximums, the CPU topology and the description.

Shut off, every change goes into the definition (``offline``). Running, vCPUs and memory change
``live`` within the maximums set at creation — vCPUs are plugged in or out (x86, s390x; not
aarch64, whose QEMU machine has no CPU hot-plug), memory follows the virtio balloon up to
``max_memory_mib`` (done only once the guest has it: ``_balloon``) — and everything else waits
for the next start (``next_start``): a raised maximum, a new topology, or vCPUs above the
maximum. One request is applied one way: live when all of it can be, else at the next start
(or refused, with ``mode: live``). A live change that fails half-way is undone, so the VM stays
as it was.

Memory changes live through the balloon rather than DIMM hot-plug: the balloon works the same
on every architecture Corral runs (DIMMs need NUMA and memory slots, which s390x lacks and ARM
offers only to UEFI guests), and lets memory shrink as well as grow back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from corral import store
from corral.errors import Conflict, CorralError, InsufficientResources, InvalidRequest
from corral.model.arch import CpuTopology
from corral.model.vm import VmState
from corral.model.vm_edit import Applied, ChangeMode, VmChange, VmEdit
from corral.services.locks import OperationLocks
from corral.services.principal import Principal
from corral.services.vms import _balloon, _hardware
from corral.services.vms.inventory import VmInventory
from corral.virt import DomainRecord, LibvirtHost
from corral.virt._edit import sizes
from corral.virt._records import cpu_info
from corral.virt.domain_xml import Domain

log = logging.getLogger(__name__)

#: States in which a domain runs (changes can reach the guest).
ACTIVE = frozenset(
    {VmState.RUNNING, VmState.PAUSED, VmState.BLOCKED, VmState.SHUTTING_DOWN, VmState.SUSPENDED}
)


@dataclass(frozen=True)
class _Sizes:
    vcpus: int
    max_vcpus: int
    memory_mib: int
    max_memory_mib: int
    topology: CpuTopology | None

    def describe_change(self, old: _Sizes) -> list[str]:
        changes = []
        for label, unit, before, after in (
            ("vCPUs", "", old.vcpus, self.vcpus),
            ("max vCPUs", "", old.max_vcpus, self.max_vcpus),
            ("memory", " MiB", old.memory_mib, self.memory_mib),
            ("max memory", " MiB", old.max_memory_mib, self.max_memory_mib),
        ):
            if before != after:
                changes.append(f"{label} {before}{unit} → {after}{unit}")
        if self.topology != old.topology:
            changes.append(f"CPU topology {self.topology or 'none'}")
        return changes


def _next_start_sizes(record: DomainRecord) -> _Sizes:
    """The sizes the definition holds (what the next start gets)."""
    definition = Domain.from_xml(record.inactive_xml or record.xml)
    has_current = definition.node.find("currentMemory") is not None
    cpu = cpu_info(definition)
    return _Sizes(
        vcpus=definition.vcpu.current or definition.vcpu.count or record.vcpus,
        max_vcpus=definition.vcpu.count or record.vcpus,
        memory_mib=definition.current_memory.mib if has_current else definition.memory.mib,
        max_memory_mib=definition.memory.mib,
        topology=cpu.topology if cpu else None,
    )


def _live_sizes(record: DomainRecord) -> _Sizes:
    cpu = record.cpu
    return _Sizes(
        vcpus=record.vcpus,
        max_vcpus=record.max_vcpus or record.vcpus,
        memory_mib=record.memory_mib,
        max_memory_mib=record.max_memory_mib or record.memory_mib,
        topology=cpu.topology if cpu else None,
    )


def _wanted(vm: str, base: _Sizes, req: VmEdit) -> _Sizes:
    """The sizes asked for; a vCPU or memory figure above its maximum raises the maximum when
    the request does not set that maximum itself."""
    vcpus = req.vcpus if req.vcpus is not None else base.vcpus
    max_vcpus = req.max_vcpus if req.max_vcpus is not None else max(base.max_vcpus, vcpus)
    memory = req.memory_mib if req.memory_mib is not None else base.memory_mib
    max_memory = (
        req.max_memory_mib if req.max_memory_mib is not None else max(base.max_memory_mib, memory)
    )
    if vcpus > max_vcpus:
        raise Conflict(
            f"VM {vm!r} has {vcpus} vCPUs, more than max_vcpus {max_vcpus}: lower vcpus too"
        )
    if memory > max_memory:
        raise Conflict(
            f"VM {vm!r} has {memory} MiB of memory, more than max_memory_mib {max_memory}: "
            "lower memory_mib too"
        )
    topology = req.topology or base.topology
    if topology is not None and topology.total != max_vcpus:
        if req.topology is not None and req.max_vcpus is not None:
            raise InvalidRequest(
                f"topology gives {topology.total} vCPUs but max_vcpus is {max_vcpus}: make "
                f"sockets x cores x threads equal {max_vcpus}"
            )
        raise Conflict(
            f"VM {vm!r} has the CPU topology {topology} ({topology.total} vCPUs), but would have "
            f"{max_vcpus} vCPUs at most: give a topology for {max_vcpus} as well"
        )
    return _Sizes(vcpus, max_vcpus, memory, max_memory, topology)


#: States in which the guest runs its balloon driver (a paused one cannot move it).
_BALLOONING = frozenset({VmState.RUNNING, VmState.BLOCKED})


def _why_not_live(
    where: _hardware.Target, state: VmState, now: _Sizes, wanted: _Sizes
) -> str | None:
    """Why the running VM cannot get ``wanted`` now (None: it can)."""
    if wanted.memory_mib != now.memory_mib and state not in _BALLOONING:
        return f"a {state.value} guest cannot give or take memory (resume it first)"
    if wanted.vcpus != now.vcpus and not where.profile.vcpu_hotplug:
        return f"{where.arch} guests cannot have vCPUs plugged in or out while they run"
    if wanted.max_vcpus != now.max_vcpus or wanted.max_memory_mib != now.max_memory_mib:
        return "maximums change only when the VM starts"
    if wanted.topology != now.topology:
        return "the CPU topology changes only when the VM starts"
    return None


class VmEditing:
    def __init__(self, inventory: VmInventory, locks: OperationLocks) -> None:
        self._inventory = inventory
        self._locks = locks

    async def edit(self, principal: Principal, name: str, req: VmEdit) -> VmChange:
        async with self._locks.hold(name, "an edit"):
            _row, host, record = await self._inventory.record(name)
            active = record.state in ACTIVE
            applied = Applied.LIVE if active else Applied.OFFLINE
            if active is False and req.mode is ChangeMode.LIVE:
                raise Conflict(
                    f"VM {name!r} is shut off: nothing can change live. Leave mode out (the "
                    "change is made to its definition) or start it first"
                )
            changes: list[str] = []
            if any(
                v is not None
                for v in (req.vcpus, req.max_vcpus, req.memory_mib, req.max_memory_mib,
                          req.topology)
            ):  # fmt: skip
                applied, changes = await self._resize(host, record, req, active)
            if req.description is not None and req.description != record.description:
                await host.set_description(record.uuid, req.description)
                description = req.description
                await self._inventory.db(
                    lambda s: store.update_vm(s, name, description=description)
                )
                changes.append("description")
        return VmChange(applied=applied, changes=changes, vm=await self._inventory.get(name))

    async def _resize(
        self, host: LibvirtHost, record: DomainRecord, req: VmEdit, active: bool
    ) -> tuple[Applied, list[str]]:
        name = record.name
        where = await _hardware.target(host, record.arch, record.machine, record.accelerator)
        later = _next_start_sizes(record)
        now = _live_sizes(record) if active else later
        wanted_now = (
            _wanted(name, now, req) if active and req.mode is not ChangeMode.NEXT_START else None
        )
        why_not = (
            _why_not_live(where, record.state, now, wanted_now) if wanted_now is not None else None
        )
        if active and req.mode is ChangeMode.LIVE and why_not is not None:
            raise Conflict(
                f"VM {name!r} cannot get this while it runs: {why_not}. Ask for mode "
                f"next_start, or shut it down and edit it (it has {now.vcpus} of at most "
                f"{now.max_vcpus} vCPUs and {now.memory_mib} of at most {now.max_memory_mib} MiB)"
            )
        live = wanted_now is not None and why_not is None
        # A change for the next start starts from the definition as it stands, pending changes
        # included, and touches only the fields asked for: starting from the live sizes undid
        # an earlier edit's pending changes (a second edit turned "max vCPUs 4" back into 2).
        wanted = wanted_now if live and wanted_now is not None else _wanted(name, later, req)
        _hardware.check_vcpus(host, where, name, wanted.max_vcpus)
        _hardware.check_vcpu_hotplug(where, wanted.vcpus, wanted.max_vcpus)
        _hardware.check_topology(where, req.topology)
        caps = await host.capabilities()
        if wanted.max_memory_mib > caps.memory_mib:
            raise InsufficientResources(
                f"host {host.name!r} has {caps.memory_mib} MiB of memory, VM {name!r} would have "
                f"up to {wanted.max_memory_mib} MiB: ask for less"
            )
        rewrite = sizes(
            wanted.vcpus, wanted.max_vcpus, wanted.memory_mib, wanted.max_memory_mib,
            wanted.topology,
        )  # fmt: skip
        if not active:
            await host.changes.redefine(record.uuid, rewrite, "change the sizes")
            return Applied.OFFLINE, wanted.describe_change(later)
        if not live:
            await host.changes.redefine(record.uuid, rewrite, "change the sizes for the next start")
            return Applied.NEXT_START, wanted.describe_change(later)
        await _apply_live(host, name, record.uuid, now, wanted)
        return Applied.LIVE, wanted.describe_change(now)


async def _apply_live(host: LibvirtHost, name: str, uuid: str, now: _Sizes, wanted: _Sizes) -> None:
    """vCPUs, then memory; if the memory change fails, the vCPUs go back."""
    if wanted.vcpus != now.vcpus:
        await host.changes.set_vcpus(uuid, wanted.vcpus)
    if wanted.memory_mib != now.memory_mib:
        try:
            await _balloon.change_memory(host, name, uuid, wanted.memory_mib)
        except CorralError:
            if wanted.vcpus != now.vcpus:
                try:
                    await host.changes.set_vcpus(uuid, now.vcpus)
                except CorralError as exc:
                    log.error("could not put back %d vCPUs in %s: %s", now.vcpus, uuid, exc)
            raise
