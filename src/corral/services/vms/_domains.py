"""The storage domains a new VM's disks use: their drivers, and the hosts that do not reach
them (placement leaves those out; a VM sent to one is refused naming the domain and host)."""

from __future__ import annotations

from corral.errors import Conflict
from corral.model.storage_domain import LOCAL_DOMAIN, ReachState
from corral.model.vm import VmSpec
from corral.services.storage import StorageDomains, StorageDriver


def used_domains(spec: VmSpec) -> list[str]:
    """The domains other than ``local`` that ``spec``'s disks use, in order."""
    return list(dict.fromkeys(d.domain for d in spec.disks if d.domain != LOCAL_DOMAIN))


async def drivers(storage: StorageDomains | None, spec: VmSpec) -> dict[str, StorageDriver]:
    """Each used domain's driver (NotFound for an unknown domain); a disk import is refused
    outside ``local``."""
    names = used_domains(spec)
    for disk in spec.disks:
        if disk.import_path is not None and disk.domain != LOCAL_DOMAIN:
            raise Conflict(
                f"disk {disk.name!r}: an import goes to the local domain; make a blank disk or a "
                f"linked clone in storage domain {disk.domain} instead"
            )
    if not names:
        return {}
    if storage is None:
        raise Conflict("storage domains are not available in this Corral")
    return {name: storage.driver(await storage.config(name)) for name in names}


async def unreached(storage: StorageDomains | None, spec: VmSpec) -> dict[str, str]:
    """Host -> "storage domain D (why)" for every host that does not reach a used domain."""
    found: dict[str, str] = {}
    if storage is None:
        return found
    for name in used_domains(spec):
        for reach in (await storage.show(name)).hosts:
            if reach.state is not ReachState.REACHABLE and reach.host not in found:
                why = reach.reason or reach.state.value
                found[reach.host] = f"storage domain {name} ({why})"
    return found


def check_reach(unreached_hosts: dict[str, str], host: str) -> None:
    """Conflict when ``host`` does not reach a domain the VM's disks use."""
    if host in unreached_hosts:
        raise Conflict(
            f"host {host} does not reach {unreached_hosts[host]}: pick a host that reaches it "
            "(`corral storage-domain show`), or leave the host out to let Corral choose"
        )
