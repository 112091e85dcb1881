"""Creating a VM: at once when nothing is imported, else as a task with progress."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from corral.errors import Conflict, CorralError
from corral.model.image import ImageKind
from corral.model.task import TaskInfo
from corral.model.vm import VmInfo, VmSpec
from corral.services.audit import AuditService
from corral.services.host_paths import HostPathRule
from corral.services.images import ImageLibrary, image_needs
from corral.services.locks import OperationLocks
from corral.services.principal import Principal
from corral.services.storage import StorageDomains, StorageDriver
from corral.services.tasks import TaskContext, TaskService
from corral.services.vms import _domains, _provision
from corral.services.vms._existing import volume_users
from corral.services.vms._use_case import TaskUseCase
from corral.services.vms.inventory import VmInventory
from corral.virt import LibvirtHost

IMPORT_INSTEAD = (
    "upload the image to the library (`corral image upload FILE --kind disk`) and name it "
    "as the disk's base_image"
)
CDROM_INSTEAD = "name an ISO image of the library (`corral image list`)"
KERNEL_INSTEAD = (
    "upload the kernel and initrd to the library (`corral image upload FILE --kind kernel`) "
    "and name those images"
)


def host_files(spec: VmSpec) -> list[tuple[str, str, str]]:
    """(field, path, what to name instead) for every host file ``spec`` names."""
    found = [
        (f"disk {d.name!r}: import_path", d.import_path, IMPORT_INSTEAD)
        for d in spec.disks
        if d.import_path is not None
    ]
    if spec.cdrom is not None and spec.cdrom.startswith("/"):
        found.append(("cdrom", spec.cdrom, CDROM_INSTEAD))
    for field, path in (("boot kernel", spec.boot.kernel), ("boot initrd", spec.boot.initrd)):
        if path is not None and path.startswith("/"):
            found.append((field, path, KERNEL_INSTEAD))
    return found


class VmCreation(TaskUseCase):
    def __init__(
        self,
        inventory: VmInventory,
        tasks: TaskService,
        audit: AuditService,
        locks: OperationLocks,
        images: ImageLibrary,
        paths: HostPathRule,
    ) -> None:
        super().__init__(inventory, tasks, audit, locks)
        self._images = images
        self._paths = paths
        #: Where a VM without a host goes (the placement policy), told which images each host
        #: lacks; None: the first usable host.
        self.choose_host: (
            Callable[[VmSpec, Mapping[str, str], Mapping[str, str]], Awaitable[str | None]] | None
        ) = None
        #: The storage domains disks may be made in (None: local only).
        self.storage: StorageDomains | None = None
        #: Hosts lacking networks a VM needs (required ones, and those its NICs name), with
        #: what they lack in words; None: no cluster networks to ask about.
        self.network_gaps: Callable[[set[str]], Awaitable[dict[str, str]]] | None = None

    async def create(self, principal: Principal, spec: VmSpec) -> VmInfo | TaskInfo:
        # Before anything looks at a path or a host: a non-admin naming a file is refused the
        # same way whether it exists or not.
        for field, _path, instead in host_files(spec):
            self._paths.refuse_non_admin(principal, field, instead)
        hosts = self._inventory.hosts
        target = spec.host
        gaps: dict[str, str] = {}
        if self.network_gaps is not None:
            gaps = await self.network_gaps({nic.network for nic in spec.nics})
        drivers = await _domains.drivers(self.storage, spec)
        unreached = await _domains.unreached(self.storage, spec)
        if target is None and self.choose_host is not None:
            # A VM uses its own host's images: only hosts holding them all are candidates.
            lacking = dict(await self._images.lacking(spec.name, image_needs(spec)))
            for name, what in gaps.items():
                lacking[name] = f"{lacking[name]} and {what}" if name in lacking else what
            target = await self.choose_host(spec, lacking, unreached)
        elif target is not None and target in gaps:
            raise Conflict(
                f"host {target} lacks {gaps[target]} (VM {spec.name} needs it): pick another "
                f"host, or see `corral network list` for why it is not applied there"
            )
        host = hosts.for_new_vm(target)
        _domains.check_reach(unreached, host.name)
        spec = self._allowed_paths(principal, spec, local=_provision.is_local(host.uri))
        users = await volume_users(hosts.all(), host, spec)
        checked = await _provision.validate(self._inventory.db, host, spec, drivers, users)
        if checked.cdrom is not None and not checked.cdrom.startswith("/"):
            iso = await self._images.iso_for(host, checked.cdrom, vm=checked.name)
            checked = checked.model_copy(update={"cdrom": iso.path})
        checked = await self._kernel_images(host, checked)
        if any(d.import_path for d in checked.disks):
            return await self._create_task(principal, host, checked, drivers)
        async with self._locks.hold(checked.name, "create"):
            uuid = await _provision.provision(
                self._inventory.db, host, checked, principal, None, drivers
            )
            if checked.start:
                await _start_created(host, checked.name, uuid)
        return await self._inventory.get(checked.name)

    async def _kernel_images(self, host: LibvirtHost, spec: VmSpec) -> VmSpec:
        """``spec`` with kernel and initrd images of the library named by their files."""
        boot = spec.boot
        update = {}
        for field, value in (("kernel", boot.kernel), ("initrd", boot.initrd)):
            if value is not None and not value.startswith("/"):
                image = await self._images.image_for(host, value, spec.name, ImageKind.KERNEL)
                update[field] = image.path
        return spec.model_copy(update={"boot": boot.model_copy(update=update)}) if update else spec

    def _allowed_paths(self, principal: Principal, spec: VmSpec, *, local: bool) -> VmSpec:
        """``spec`` with each host path checked against the rule and resolved (symbolic links
        followed where Corral can see them: what is checked is what libvirt gets)."""

        def check(field: str, path: str, instead: str, on_host: bool = True) -> str:
            return self._paths.check(
                principal, field, path, instead=instead, local=local or not on_host
            )

        disks = [
            d.model_copy(
                update={
                    # Corral itself reads an import, on its own machine.
                    "import_path": check(
                        f"disk {d.name!r}: import_path", d.import_path, IMPORT_INSTEAD, False
                    )
                }
            )
            if d.import_path is not None
            else d
            for d in spec.disks
        ]
        boot = spec.boot.model_copy(
            update={
                field: check(f"boot {field}", path, KERNEL_INSTEAD)
                for field, path in (("kernel", spec.boot.kernel), ("initrd", spec.boot.initrd))
                if path is not None and path.startswith("/")
            }
        )
        cdrom = spec.cdrom
        if cdrom is not None and cdrom.startswith("/"):
            cdrom = check("cdrom", cdrom, CDROM_INSTEAD)
        return spec.model_copy(update={"disks": disks, "boot": boot, "cdrom": cdrom})

    async def _create_task(
        self,
        principal: Principal,
        host: LibvirtHost,
        spec: VmSpec,
        drivers: Mapping[str, StorageDriver],
    ) -> TaskInfo:
        db = self._inventory.db

        async def body(ctx: TaskContext) -> dict[str, Any]:
            async with self._locks.hold(spec.name, "create"):
                uuid = await self._audit.outcome(
                    principal.user,
                    "vm.create",
                    spec.name,
                    lambda: _provision.provision(db, host, spec, principal, ctx, drivers),
                )
                if spec.start:
                    await ctx.progress(phase="starting the VM", force=True)
                    await _start_created(host, spec.name, uuid)
            return {"vm": spec.name, "uuid": uuid, "started": spec.start}

        # What an instance taking over needs (recovery.CreateRecovery): the VM's row says
        # whether it was made; whether to start it is only in the request.
        params = {"host": host.name, "start": spec.start}
        return await self._tasks.start("vm.create", spec.name, principal, body, "queued", params)


async def _start_created(host: LibvirtHost, name: str, uuid: str) -> None:
    try:
        await host.start(uuid)
    except CorralError as exc:
        # The VM exists and stays: say so, or the caller would think nothing happened.
        exc.message = f"VM {name!r} was created but did not start: {exc.message}"
        raise
