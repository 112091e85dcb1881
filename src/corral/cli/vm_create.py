"""``corral vm create``: turn options into a ``VmSpec`` and ask the API for it."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from typer._click.core import ParameterSource

from corral.cli import context as c
from corral.cli.client import parse, seg
from corral.cli.output import vm_details
from corral.cli.task import JsonOpt, follow_task
from corral.cli.units import (
    DISK_SIZE_HELP,
    MEMORY_HELP,
    parse_disk_specs,
    parse_memory_mib,
    parse_nic_spec,
    validation_message,
)
from corral.cli.vm_changes import parse_topology
from corral.model.arch import CpuSpec
from corral.model.template import CloneKind, TemplateVmRequest
from corral.model.vm import Accelerator, BootSpec, DiskSpec, NicSpec, VmInfo, VmSpec


class BootSource(StrEnum):
    DISK = "disk"
    CDROM = "cdrom"
    KERNEL = "kernel"


def _parse_or_usage(what: str, func: Any, *args: Any) -> Any:
    try:
        return func(*args)
    except ValueError as exc:
        c.usage_error(str(exc), what)


def _infer_boot(
    boot: str | None, kernel: str | None, disks: list[DiskSpec], cdrom: str | None, drive: bool
) -> str:
    """Default boot source: the kernel if given, else the disk, else the CD-ROM (an ISO, or an
    empty drive that gets one later)."""
    if boot is not None:
        return boot
    if kernel:
        return "kernel"
    if not disks and (cdrom or drive):
        return "cdrom"
    if not disks:
        c.usage_error(
            "a VM needs something to boot from: --disk size=10G (or base=IMAGE, import=PATH), "
            "--cdrom ISO, --cdrom-drive (an empty drive, media inserted later) or --kernel"
        )
    return "disk"


def build_spec(
    *,
    name: str,
    vcpus: int,
    memory: str,
    disks: list[str],
    cdrom: str | None,
    nics: list[str] | None,
    boot: str | None,
    kernel: str | None,
    initrd: str | None,
    cmdline: str | None,
    description: str,
    accelerator: Accelerator | None,
    host: str | None,
    start: bool = False,
    cdrom_drive: bool = False,
    hardware: dict[str, Any] | None = None,
) -> VmSpec:
    """The ``VmSpec`` the options describe; ``typer.BadParameter`` (exit 2) when they don't.
    ``hardware`` holds the VmSpec fields about architecture, CPU and maximums as given."""
    memory_mib: int = _parse_or_usage("--memory", parse_memory_mib, memory)
    disk_specs: list[DiskSpec] = _parse_or_usage("--disk", parse_disk_specs, disks)
    # None: the server's default (one NIC on NAT); [] (--no-nic): no network card.
    nic_specs: list[NicSpec] | None = (
        None if nics is None else [_parse_or_usage("--nic", parse_nic_spec, n) for n in nics]
    )
    try:
        boot_spec = BootSpec.model_validate(
            {
                "source": _infer_boot(boot, kernel, disk_specs, cdrom, cdrom_drive),
                "kernel": kernel,
                "initrd": initrd,
                "cmdline": cmdline,
            }
        )
        return VmSpec(
            name=name,
            vcpus=vcpus,
            memory_mib=memory_mib,
            disks=disk_specs,
            cdrom=cdrom,
            cdrom_drive=cdrom_drive,
            **({} if nic_specs is None else {"nics": nic_specs}),
            boot=boot_spec,
            description=description,
            accelerator=accelerator,
            host=host,
            start=start,
            **(hardware or {}),
        )
    except ValidationError as exc:
        c.usage_error(validation_message(exc))


def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The new VM's name."),
    vcpus: int = typer.Option(1, "--vcpus", min=1, max=512, help="Number of virtual CPUs."),
    memory: str = typer.Option(
        "512M", "--memory", metavar="SIZE", help=f"Memory, e.g. 512M or 2G ({MEMORY_HELP})."
    ),
    disk: list[str] = typer.Option(
        [],
        "--disk",
        metavar="SPEC",
        help="size=10G[,name=data][,bus=virtio] | base=IMAGE | import=/path/to.qcow2 "
        f"(admins, under host_path_roots) | volume=VOLUME (an existing volume used as is, "
        f"e.g. volume=lun-1,domain=iscsi1) (repeat for more disks); ,domain=NAME puts a "
        f"blank disk or linked clone in a storage domain. Sizes: {DISK_SIZE_HELP}.",
    ),
    cdrom: str | None = typer.Option(
        None,
        "--cdrom",
        help="ISO image of the host's library (`corral image list`), or (admins) an ISO "
        "file's absolute path on the host under host_path_roots.",
    ),
    cdrom_drive: bool = typer.Option(
        False,
        "--cdrom-drive",
        help="An (empty) CD-ROM drive even without --cdrom, so media "
        "can be inserted while the VM runs (`corral vm cdrom`).",
    ),
    nic: list[str] = typer.Option(
        [],
        "--nic",
        metavar="SPEC",
        help="network=nat|user|NAME[,model=virtio][,mac=…] (repeatable). Default: one NIC "
        "on nat (Corral's NAT network).",
    ),
    no_nic: bool = typer.Option(False, "--no-nic", help="No network card at all."),
    boot: BootSource | None = typer.Option(
        None,
        "--boot",
        help="disk|cdrom|kernel (default: kernel if --kernel, else disk, else cdrom: the "
        "--cdrom ISO or the empty --cdrom-drive).",
    ),
    kernel: str | None = typer.Option(
        None,
        "--kernel",
        help="A kernel image of the library (`image upload FILE --kind kernel`), or (admins) a "
        "path on the host under host_path_roots.",
    ),
    initrd: str | None = typer.Option(
        None, "--initrd", help="An initrd: a kernel image of the library, or (admins) a path."
    ),
    cmdline: str | None = typer.Option(None, "--cmdline", help="Kernel command line."),
    description: str = typer.Option("", "--description", help="Free text."),
    accelerator: Accelerator | None = typer.Option(
        None, "--accelerator", help="kvm or tcg (default: the host's best)."
    ),
    host: str | None = typer.Option(None, "--host", help="Host to create it on."),
    arch: str | None = typer.Option(
        None,
        "--arch",
        metavar="ARCH",
        help="x86_64, aarch64, s390x… (default: the host's own; `corral host show`).",
    ),
    machine: str | None = typer.Option(
        None, "--machine", help="Machine type, e.g. q35 (default: the architecture's)."
    ),
    cpu: str | None = typer.Option(
        None, "--cpu", help="host-model, host-passthrough, max, or a CPU model name."
    ),
    topology: str | None = typer.Option(
        None, "--topology", metavar="SxCxT", help="CPU sockets x cores x threads, e.g. 4x8x2."
    ),
    nested: bool = typer.Option(False, "--nested", help="Let the guest run VMs itself."),
    max_vcpus: int | None = typer.Option(
        None, "--max-vcpus", min=1, max=512, help="vCPUs it can get while running."
    ),
    max_memory: str | None = typer.Option(
        None,
        "--max-memory",
        metavar="SIZE",
        help="Memory it can get while running, e.g. 4G (bare number: MiB).",
    ),
    start: bool = typer.Option(False, "--start", help="Start the VM once it is created."),
    template: str | None = typer.Option(
        None,
        "--template",
        metavar="T",
        help="Make it from template T (`corral template list`): its hardware and disks are "
        "the template's, on the template's host.",
    ),
    clone: CloneKind = typer.Option(
        CloneKind.LINKED,
        "--clone",
        help="With --template: linked (an overlay per disk, instant) or full (a copy).",
    ),
    ssh_key: list[Path] = typer.Option(
        [],
        "--ssh-key",
        metavar="FILE",
        help="With --template: a public key file (repeatable) cloud-init installs for --user, "
        "else for the image's default user.",
    ),
    user_data: Path | None = typer.Option(
        None,
        "--user-data",
        metavar="FILE",
        help="With --template: your cloud-config (YAML starting with #cloud-config), checked "
        "by cloud-init's schema, merged with the other cloud-init options, never shown again.",
    ),
    hostname: str | None = typer.Option(
        None, "--hostname", help="With --template: the host name the guest takes."
    ),
    user: str | None = typer.Option(
        None, "--user", help="With --template: a user cloud-init creates, with sudo."
    ),
    no_wait: bool = typer.Option(
        False, "--no-wait", help="When an image import runs as a task, print its id and return."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Create a VM (and start it with --start)."""
    seeded = ssh_key or user_data is not None or hostname is not None or user is not None
    if seeded and template is None:
        c.usage_error(
            "cloud-init options need --template (a template of a cloud image)", "--template"
        )
    if template is not None:
        given = _hardware_given(ctx)
        if given is not None:
            c.usage_error(
                f"{given} does not go with --template: the template defines the hardware "
                "(change it afterwards with `corral vm edit`)",
                given,
            )
        cloud = cloud_init_options(ssh_key, user_data, hostname, user) if seeded else None
        _from_template(ctx, name, template, clone, description, start, cloud, no_wait, json_out)
        return
    hardware: dict[str, Any] = {
        "arch": arch,
        "machine": machine,
        "max_vcpus": max_vcpus,
        "max_memory_mib": _parse_or_usage("--max-memory", parse_memory_mib, max_memory)
        if max_memory
        else None,
        "cpu": {
            "model": cpu,
            "topology": _parse_or_usage("--topology", parse_topology, topology)
            if topology
            else None,
            "nested": nested,
        },
    }
    if nic and no_nic:
        c.usage_error("give --nic or --no-nic, not both", "--no-nic")
    spec = build_spec(
        name=name,
        vcpus=vcpus,
        memory=memory,
        disks=disk,
        cdrom=cdrom,
        nics=[] if no_nic else (nic or None),
        boot=boot.value if boot else None,
        kernel=kernel,
        initrd=initrd,
        cmdline=cmdline,
        description=description,
        accelerator=accelerator,
        host=host,
        start=start,
        cdrom_drive=cdrom_drive,
        hardware=hardware,
    )
    client = c.client(ctx)
    # New fields only when asked: servers from before them refuse fields they do not know.
    unasked = {"cdrom_drive"} if not cdrom_drive else set()
    if not nic and not no_nic:
        unasked.add("nics")  # the server's default NIC, not this client's idea of it
    if spec.cpu == CpuSpec():
        unasked.add("cpu")
    body = spec.model_dump(mode="json", exclude_none=True, exclude=unasked or None)
    response = client.post("/vms", json=body)
    if response.status_code == 202:
        if follow_task(ctx, response, no_wait=no_wait, json_flag=json_out) is None:
            return
        response = client.get(f"/vms/{seg(name)}")
    vm = parse(response, VmInfo)

    def render() -> None:
        c.info(f"created VM {vm.name} on {vm.host}" + (" and started it" if start else ""))
        c.out.print(vm_details(vm))

    c.emit(ctx, json_out, response.json(), render)


#: The options ``vm create --template`` takes; every other one describes hardware.
_WITH_TEMPLATE = frozenset(
    {"name", "template", "clone", "ssh_key", "user_data", "hostname", "user", "description",
     "start", "no_wait", "json_out"}
)  # fmt: skip


def _hardware_given(ctx: typer.Context) -> str | None:
    """The first hardware option typed on the command line (the template defines those)."""
    for param in ctx.command.params:
        if param.name in _WITH_TEMPLATE or param.name is None:
            continue
        if ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
            return param.opts[0]
    return None


def _from_template(
    ctx: typer.Context,
    name: str,
    template: str,
    clone: CloneKind,
    description: str,
    start: bool,
    cloud_init: dict[str, Any] | None,
    no_wait: bool,
    json_out: bool,
) -> None:
    try:
        request = TemplateVmRequest.model_validate(
            {
                "name": name,
                "clone": clone,
                "description": description or None,
                "start": start,
                "cloud_init": cloud_init,
            }
        )
    except ValidationError as exc:
        c.usage_error(validation_message(exc), "NAME")
    client = c.client(ctx)
    body = request.model_dump(mode="json", exclude_none=True)
    if cloud_init is not None:
        body["cloud_init"] = cloud_init  # as given: the model's dump hides nothing secret here
    response = client.post(f"/templates/{seg(template)}/vms", json=body)
    if follow_task(ctx, response, no_wait=no_wait, json_flag=json_out) is None:
        return
    response = client.get(f"/vms/{seg(name)}")
    vm = parse(response, VmInfo)

    def render() -> None:
        how = f"a {clone.value} clone of template {template}"
        c.info(f"created VM {vm.name} on {vm.host}, {how}" + (", and started it" if start else ""))
        c.out.print(vm_details(vm))

    c.emit(ctx, json_out, response.json(), render)


def cloud_init_options(
    keys: list[Path], user_data: Path | None, hostname: str | None, user: str | None
) -> dict[str, Any]:
    """The cloud_init part of the request, from the options (files read here)."""

    def read(path: Path, flag: str) -> str:
        try:
            return path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            c.usage_error(f"cannot read {path}: {exc}", flag)

    lines = [line for k in keys for line in read(k, "--ssh-key").splitlines() if line.strip()]
    config: dict[str, Any] = {}
    if hostname is not None:
        config["hostname"] = hostname
    if user is not None:
        config["users"] = [{"name": user, "ssh_authorized_keys": lines, "sudo": True}]
    elif lines:
        config["ssh_authorized_keys"] = lines
    if user_data is not None:
        config["user_data"] = read(user_data, "--user-data")
    return config
