"""``corral volume list|delete``: the volumes of Corral's pool on each host, for an
administrator to find and remove what nothing uses (a disk kept when its VM was deleted, a
copy a migration interrupted by something other than Corral left behind).

What is in use is never deleted: a volume that any domain defined on the host uses (directly,
or through a linked clone standing on it), a library image (``corral image delete`` checks
more), or the base of another volume.
"""

from __future__ import annotations

from corral.errors import Conflict, NotFound
from corral.model.storage_domain import LOCAL_DOMAIN
from corral.model.volume import VolumeInfo
from corral.services.hosts import HostService
from corral.services.images import backing_chain, parse_image_volume
from corral.virt import LibvirtHost, VolumeRef


async def host_volumes(host: LibvirtHost) -> list[VolumeInfo]:
    """Every volume of ``host``'s pool with the VMs that use it and the volumes on it."""
    volumes = await host.storage.list_volumes()
    return volume_infos(volumes, await host.disk_users(), host.name)


def volume_infos(
    volumes: list[VolumeRef],
    disk_users: dict[str, set[str]],
    host: str,
    domain: str = LOCAL_DOMAIN,
) -> list[VolumeInfo]:
    """``volumes`` (listed through ``host``) with their users (``disk_users``: path -> VMs,
    counted through linked clones) and the volumes standing on each."""
    by_path = {v.path: v for v in volumes}
    users: dict[str, set[str]] = {}
    for path, domains in disk_users.items():
        for link in backing_chain(path, by_path):
            users.setdefault(link, set()).update(domains)
    backs: dict[str, list[str]] = {}
    for vol in volumes:
        if vol.backing:
            backs.setdefault(vol.backing, []).append(vol.name)
    result = []
    for vol in volumes:
        parsed = parse_image_volume(vol.name)
        result.append(
            VolumeInfo(
                name=vol.name,
                host=host,
                domain=domain,
                path=vol.path,
                format=vol.format,
                capacity_bytes=vol.capacity_bytes,
                allocation_bytes=vol.allocation_bytes,
                used_by=sorted(users.get(vol.path, ())),
                image=parsed[1] if parsed else None,
                backs=sorted(backs.get(vol.path, ())),
            )
        )
    return result


def refusal(volume: VolumeInfo) -> str | None:
    """Why ``volume`` may not be deleted (None: it may)."""
    if volume.domain == LOCAL_DOMAIN:
        where = f"volume {volume.name} on host {volume.host}"
    else:
        where = f"volume {volume.name} of storage domain {volume.domain}"
    if volume.used_by:
        vms = ", ".join(volume.used_by)
        return (
            f"{where} is used by VM(s) {vms}: detach it (`corral vm disk detach`) or delete "
            "the VM(s) first"
        )
    if volume.image is not None:
        return (
            f"{where} is the library image {volume.image!r}: delete it with "
            f"`corral image delete {volume.image} --host {volume.host}`"
        )
    if volume.backs:
        clones = ", ".join(volume.backs)
        return f"{where} is the base of the linked clone(s) {clones}: delete them first"
    return None


class VolumeService:
    def __init__(self, hosts: HostService) -> None:
        self._hosts = hosts

    async def list_volumes(self, host_name: str | None = None) -> list[VolumeInfo]:
        """Every connected host's volumes (or one host's: Conflict if it is not connected)."""
        hosts = [self._hosts.connected(host_name)] if host_name else self._hosts.all()
        result: list[VolumeInfo] = []
        for host in hosts:
            if host.connected:
                result.extend(await host_volumes(host))
        return result

    async def delete(self, host_name: str, name: str) -> VolumeInfo:
        """Delete volume ``name`` of ``host_name``'s pool unless something uses it."""
        host = self._hosts.connected(host_name)
        volume = next((v for v in await host_volumes(host) if v.name == name), None)
        if volume is None:
            raise NotFound(
                f"no volume {name!r} in Corral's pool on host {host_name}: "
                f"`corral volume list --host {host_name}` shows them"
            )
        why = refusal(volume)
        if why is not None:
            raise Conflict(why)
        await host.storage.delete_volume(name)
        return volume
