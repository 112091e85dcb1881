"""Templates: made from a shut-off VM (its disks become read-only bases, the VM goes on on
overlays of them), listed, shown, deleted while nothing stands on them, and the source of new
VMs (linked: an overlay per disk; full: a copy of each base)."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from corral import store
from corral.cloudinit.compose import compose, seal
from corral.cloudinit.model import CloudInitConfig, CloudInitInfo, UserDataInfo
from corral.cloudinit.schema import check_user_data, user_data_digest
from corral.cloudinit.seed import build_seed_iso
from corral.errors import Conflict, CorralError, NotFound
from corral.model.arch import Arch
from corral.model.image import ImageKind
from corral.model.task import TaskInfo
from corral.model.template import (
    CloneKind,
    TemplateCreate,
    TemplateDisk,
    TemplateImport,
    TemplateInfo,
    TemplateVmRequest,
)
from corral.model.vm import BootSpec, DiskSpec, VmSpec, VmState
from corral.services.images import ImageLibrary, image_volume
from corral.services.principal import Principal
from corral.services.tasks import TaskContext
from corral.services.vms import _provision
from corral.services.vms._use_case import TaskUseCase
from corral.services.vms._volumes import volume_name
from corral.services.vms.clone import check_freezable, undo_made
from corral.store.tables import Template
from corral.virt import DomainRecord, LibvirtHost, VolumeRef
from corral.virt._clone import interface_count, random_mac
from corral.virt.domain_xml import Domain

TASK_KIND = "vm.from-template"


def template_info(row: Template, used_by: list[str] | None = None) -> TemplateInfo:
    return TemplateInfo(
        name=row.name,
        description=row.description,
        host=row.host.name,
        source_vm=row.source_vm,
        source_image=next((str(d["image"]) for d in row.disks if d.get("image")), None),
        arch=row.arch,
        vcpus=row.vcpus,
        memory_mib=row.memory_mib,
        disks=[TemplateDisk.model_validate(d) for d in row.disks],
        created_by=row.created_by,
        created_at=row.created_at,
        used_by=used_by or [],
    )


class Templates(TaskUseCase):
    #: Where imported templates' images are found (set by the runtime).
    images: ImageLibrary | None = None

    # -- making and removing templates --------------------------------------------------------
    async def create(self, principal: Principal, req: TemplateCreate) -> TemplateInfo:
        db = self._inventory.db
        if await db.read(lambda s: store.find_template(s, req.name)) is not None:
            raise Conflict(f"a template named {req.name!r} already exists; choose another name")
        async with self._locks.hold(req.from_vm, "template"):
            _row, host, record = await self._inventory.record(req.from_vm)
            await check_freezable(host, record, "a template")
            disks = [d for d in record.disks if d.device == "disk"]
            if not disks:
                raise Conflict(f"VM {req.from_vm!r} has no disk: a template needs one")
            xml = await host.saved_definition(record.uuid)
            bases, created = await self._freeze(host, record)
            try:
                await db(
                    lambda s: store.add_template(
                        s,
                        name=req.name,
                        host=host.name,
                        source_vm=record.name,
                        xml=xml,
                        disks=bases,
                        arch=record.arch or "x86_64",
                        vcpus=record.vcpus,
                        memory_mib=record.memory_mib,
                        created_by=principal.user,
                        description=req.description,
                    )
                )
            except BaseException:
                await _unfreeze(host, record, created)
                raise
        return await self.show(req.name)

    async def import_image(self, principal: Principal, req: TemplateImport) -> TemplateInfo:
        """A template whose base is a disk image of a host's library, as it is (the image
        then cannot be deleted while the template exists), with a definition made from
        ``req``'s settings, checked as a new VM's would be."""
        db = self._inventory.db
        if await db.read(lambda s: store.find_template(s, req.name)) is not None:
            raise Conflict(f"a template named {req.name!r} already exists; choose another name")
        host, base = await self._image_base(req.image, req.host)
        spec = VmSpec(
            # Any unused name: a VM made from the template gets its own.
            name=f"template-{secrets.token_hex(4)}",
            arch=req.arch,
            machine=req.machine,
            vcpus=req.vcpus,
            memory_mib=req.memory_mib,
            nics=list(req.nics),
            disks=[DiskSpec(name="root", base_image=req.image)],
            boot=BootSpec(source="disk"),
        )
        checked = await _provision.validate(db, host, spec)
        checked = checked.model_copy(
            update={"nics": await _provision.resolve_nics(host, checked.nics)}
        )
        xml = await host.domain_xml(checked, [base])
        [target] = [d.target_dev for d in Domain.from_xml(xml).devices.disks if d.target_dev]
        disk = {"target": target, "volume": base.name, "path": base.path,
                "capacity_bytes": base.capacity_bytes, "image": req.image}  # fmt: skip
        arch = (checked.arch or Arch.X86_64).value
        await db(
            lambda s: store.add_template(
                s,
                name=req.name,
                host=host.name,
                source_vm="",
                xml=xml,
                disks=[disk],
                arch=arch,
                vcpus=checked.vcpus,
                memory_mib=checked.memory_mib,
                created_by=principal.user,
                description=req.description,
            )
        )
        return await self.show(req.name)

    async def _image_base(self, name: str, host_name: str | None) -> tuple[LibvirtHost, VolumeRef]:
        """The host whose library holds disk image ``name``, and the image's volume; refused
        for other kinds of images and for images on shared domains."""
        if self.images is None:
            raise Conflict("this Corral has no image library")
        place, image = await self.images.locate(name, host_name, None)
        if image.kind is not ImageKind.DISK:
            raise Conflict(
                f"image {name!r} is of kind {image.kind.value}: a template needs a disk image "
                "(qcow2 or raw, `corral image upload FILE --kind disk`)"
            )
        if place.shared:
            raise Conflict(
                f"image {name!r} is on {place.where}: templates are made of images in a "
                "host's own library only (for now); upload it to a host"
            )
        host = self._inventory.hosts.for_new_vm(place.host.name)
        base = await host.storage.find_volume(image_volume(ImageKind.DISK, name))
        if base is None:
            raise NotFound(f"image {name!r} vanished from {place.where}; nothing was made")
        return host, base

    async def using_volume(self, host: str, volume: str) -> list[str]:
        """The templates whose bases include ``volume`` of ``host``'s pool."""
        rows = await self._inventory.db.read(store.list_templates)
        return sorted(
            r.name
            for r in rows
            if r.host.name == host and any(d["volume"] == volume for d in r.disks)
        )

    async def _freeze(
        self, host: LibvirtHost, record: DomainRecord
    ) -> tuple[list[dict[str, Any]], list[VolumeRef]]:
        """Point the VM's disks at fresh overlays of their current volumes, which become the
        bases: (the bases as the template records them, the overlays made)."""
        volumes = {v.path: v for v in await host.storage.list_volumes()}
        suffix = secrets.token_hex(3)
        bases: list[dict[str, Any]] = []
        created: list[VolumeRef] = []
        paths: dict[str, str] = {}
        try:
            for disk in (d for d in record.disks if d.device == "disk"):
                base = volumes[disk.path]
                stem = base.name.removesuffix(".qcow2")
                mine = await host.storage.create_linked_clone(f"{stem}.{suffix}.qcow2", base.name)
                created.append(mine)
                paths[disk.target] = mine.path
                bases.append(
                    {
                        "target": disk.target,
                        "volume": base.name,
                        "path": base.path,
                        "capacity_bytes": base.capacity_bytes,
                    }
                )
            await host.set_disk_sources(record.uuid, paths)
        except BaseException:
            await _unfreeze(host, record, created)
            raise
        return bases, created

    async def delete(self, name: str) -> None:
        """Delete the template and its bases; refused while a volume stands on one."""
        row = await self._inventory.db.read(lambda s: store.get_template(s, name))
        host = self._inventory.hosts.get(row.host.name)
        users = await self._users(host, row)
        if users:
            raise Conflict(
                f"template {name!r} is in use: {', '.join(users)} stand on its base volumes; "
                "delete those VMs (with their disks) first"
            )
        await self._inventory.db(lambda s: store.delete_template(s, name))
        for disk in row.disks:
            if disk.get("image"):
                continue  # the library's image: it stays
            if await host.storage.volume_exists(str(disk["volume"])):
                await host.storage.delete_volume(str(disk["volume"]))

    # -- reading ------------------------------------------------------------------------------
    async def all(self) -> list[TemplateInfo]:
        rows = await self._inventory.db.read(store.list_templates)
        return [template_info(r) for r in rows]

    async def show(self, name: str) -> TemplateInfo:
        row = await self._inventory.db.read(lambda s: store.get_template(s, name))
        host = self._inventory.hosts.get(row.host.name)
        used = await self._users(host, row) if host.connected else []
        return template_info(row, used)

    async def _users(self, host: LibvirtHost, row: Template) -> list[str]:
        """The VMs (by domain name), else the volumes, standing on the template's bases."""
        bases = {str(d["path"]) for d in row.disks}
        volumes = await host.storage.list_volumes()
        overlays = {v.path: v.name for v in volumes if (v.backing or "") in bases}
        if not overlays:
            return []
        users = await host.disk_users()
        vms = sorted({vm for path in overlays for vm in users.get(path, set())})
        unused = sorted(n for p, n in overlays.items() if not users.get(p))
        return vms + [f"volume {n}" for n in unused]

    # -- new VMs --------------------------------------------------------------------------------
    async def new_vm(self, principal: Principal, template: str, req: TemplateVmRequest) -> TaskInfo:
        row = await self._inventory.db.read(lambda s: store.get_template(s, template))
        if await self._inventory.db.read(lambda s: store.find_vm(s, req.name)) is not None:
            raise Conflict(f"a VM named {req.name!r} already exists; choose another name")
        host = self._inventory.hosts.for_new_vm(row.host.name)
        sealed = await _checked_cloud_init(req.cloud_init)

        async def body(ctx: TaskContext) -> dict[str, Any]:
            async with self._locks.hold(req.name, "create"):
                await self._audit.outcome(
                    principal.user,
                    "vm.create",
                    req.name,
                    lambda: self._make(ctx, principal, host, row, req, sealed),
                )
            return {
                "vm": req.name,
                "source": template,
                "clone": req.clone.value,
                "started": req.start,
            }

        params = {"source": template, "host": host.name, "start": req.start}
        return await self._tasks.start(TASK_KIND, req.name, principal, body, "disks", params)

    async def _make(
        self,
        ctx: TaskContext,
        principal: Principal,
        host: LibvirtHost,
        row: Template,
        req: TemplateVmRequest,
        sealed: CloudInitConfig | None,
    ) -> None:
        created: list[VolumeRef] = []
        record: DomainRecord | None = None
        seed: Seed | None = None
        try:
            paths: dict[str, str] = {}
            for index, disk in enumerate(row.disks):
                target, base = str(disk["target"]), str(disk["volume"])
                await ctx.progress(index / (len(row.disks) + 1), phase=f"disk {target}")
                name = volume_name(req.name, target)
                if req.clone is CloneKind.LINKED:
                    made = await host.storage.create_linked_clone(name, base)
                else:
                    made = await self._full_copy(host, name, disk)
                created.append(made)
                paths[target] = made.path
            if sealed is not None:
                await ctx.progress(phase="the cloud-init seed", force=True)
                seed = await _write_seed(host, req.name, row.xml, sealed)
                created.append(seed.volume)
            await ctx.progress(phase="defining the VM", force=True)
            record = await host.define_copy(
                row.xml,
                req.name,
                paths,
                req.description or "",
                (seed.macs, seed.volume.path) if seed else None,
            )
            uuid, accelerator = record.uuid, record.accelerator
            await self._inventory.db(
                lambda s: store.add_vm(
                    s,
                    uuid=uuid,
                    name=req.name,
                    host=host.name,
                    created_by=principal.user,
                    description=req.description or "",
                    accelerator=accelerator,
                )
            )
            if seed is not None and sealed is not None:
                await self._remember(uuid, sealed, seed.instance_id, principal.user)
        except BaseException:
            await _undo_vm(host, record, created)
            raise
        if req.start:
            await ctx.progress(phase="starting the VM", force=True)
            await host.start(uuid)

    async def _remember(
        self, uuid: str, sealed: CloudInitConfig, instance_id: str, who: str
    ) -> None:
        text = sealed.user_data
        await self._inventory.db(
            lambda s: store.save_cloud_init(
                s,
                vm_uuid=uuid,
                config=sealed.model_dump(mode="json"),
                instance_id=instance_id,
                user_data_digest=user_data_digest(text) if text is not None else None,
                user_data_size=len(text.encode()) if text is not None else None,
                set_by=who,
            )
        )

    async def cloud_init(self, vm: str) -> CloudInitInfo:
        """A VM's cloud-init settings as anyone may see them (no secret, no user-data)."""
        row = await self._inventory.db.read(lambda s: store.get_vm(s, vm))
        found = await self._inventory.db.read(lambda s: store.cloud_init(s, row.uuid))
        if found is None:
            raise NotFound(
                f"VM {vm!r} has no cloud-init settings (only VMs made from a template with "
                "cloud_init have them)"
            )
        config = CloudInitConfig.model_validate(found.config)
        shown = (
            UserDataInfo(sha256=found.user_data_digest, size_bytes=found.user_data_size)
            if found.user_data_digest is not None and found.user_data_size is not None
            else None
        )
        return CloudInitInfo.of(vm, config, found.instance_id, shown, found.set_by, found.set_at)

    async def replace_cloud_init(
        self, principal: Principal, vm: str, config: CloudInitConfig
    ) -> CloudInitInfo:
        """Replace a shut-off VM's cloud-init settings as a whole and write its seed again,
        with a new instance ID: cloud-init applies them at the VM's next boot (its
        per-instance modules run again). Checked first; refused, nothing changed, while the
        VM runs or when it has no seed."""
        db = self._inventory.db
        sealed = await _checked_cloud_init(config)
        assert sealed is not None
        async with self._locks.hold(vm, "cloud-init"):
            row, host, record = await self._inventory.record(vm)
            if await db.read(lambda s: store.cloud_init(s, row.uuid)) is None:
                raise Conflict(
                    f"VM {vm!r} has no cloud-init seed to replace: only VMs made from a "
                    "template with cloud_init have one"
                )
            if record.state not in (VmState.SHUTOFF, VmState.CRASHED):
                raise Conflict(
                    f"VM {vm!r} is {record.state.value}: its cloud-init settings are read at "
                    "boot; shut it down, replace them, then start it"
                )
            name = seed_volume_name(vm)
            if not any(d.path.endswith("/" + name) for d in record.disks):
                raise Conflict(
                    f"VM {vm!r} no longer has its cloud-init seed {name} attached; nothing was "
                    "changed"
                )
            instance_id = f"corral-{uuid.uuid4()}"
            files = compose(sealed, [n.mac for n in record.nics], instance_id)
            iso = await asyncio.to_thread(
                build_seed_iso, files.meta_data, files.user_data, files.network_config
            )
            await host.storage.write_small(name, iso)
            await self._remember(row.uuid, sealed, instance_id, principal.user)
        return await self.cloud_init(vm)

    @staticmethod
    async def _full_copy(host: LibvirtHost, name: str, disk: dict[str, Any]) -> VolumeRef:
        size = int(disk.get("capacity_bytes") or 0)
        if size <= 0:
            raise Conflict(f"base {disk['volume']} has no known size: use a linked clone")
        made = await host.storage.create_blank_volume(name, size)
        try:
            await host.disk_moves.clone_volume(str(disk["path"]), made.path)
        except BaseException:
            await host.storage.delete_volume(made.name)
            raise
        return made


@dataclass(frozen=True)
class Seed:
    volume: VolumeRef
    macs: list[str]
    instance_id: str


async def _checked_cloud_init(config: CloudInitConfig | None) -> CloudInitConfig | None:
    """``config`` sealed (passwords hashed), its user-data checked by cloud-init's schema
    first: refused (422, cloud-init's words) before anything is made."""
    if config is None:
        return None
    if config.user_data is not None:
        await asyncio.to_thread(check_user_data, config.user_data)
    return await asyncio.to_thread(seal, config)


async def _write_seed(host: LibvirtHost, vm: str, xml: str, sealed: CloudInitConfig) -> Seed:
    """The VM's NoCloud seed ISO as volume ``VM-cidata.iso`` of the host's pool, for NICs
    with MACs chosen here (the seed's network config names them)."""
    macs = [random_mac() for _ in range(interface_count(xml))]
    instance_id = f"corral-{uuid.uuid4()}"
    files = compose(sealed, macs, instance_id)
    iso = await asyncio.to_thread(
        build_seed_iso, files.meta_data, files.user_data, files.network_config
    )
    name = seed_volume_name(vm)
    await host.storage.write_small(name, iso)
    volume = await host.storage.find_volume(name)
    if volume is None:
        raise CorralError(f"the cloud-init seed {name} vanished right after it was written")
    return Seed(volume, macs, instance_id)


def seed_volume_name(vm: str) -> str:
    return f"{vm}-cidata.iso"


async def _unfreeze(host: LibvirtHost, record: DomainRecord, created: list[VolumeRef]) -> None:
    """Put the VM's disks back on their own volumes and drop the overlays made for it."""
    disks = {d.target: d.path for d in record.disks if d.device == "disk"}
    await undo_made(host, "template", created, restore=(record.uuid, disks))


async def _undo_vm(
    host: LibvirtHost, record: DomainRecord | None, created: list[VolumeRef]
) -> None:
    await undo_made(host, "new VM", created, defined=record)
