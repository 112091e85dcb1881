"""Rich tables for the API's objects. Pure rendering: the commands decide when to print."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text

from corral.cli.formats import human_bytes, human_duration, human_mib
from corral.cli.tables import STATE_STYLE, state_text, when
from corral.cli.tables import details as _details
from corral.cli.tables import row as _row
from corral.cli.tables import table as _table
from corral.model.auth import AuditEntry, TokenInfo, UserInfo
from corral.model.cluster import ClusterSettings
from corral.model.host import GuestArchInfo, HostInfo
from corral.model.image import ImageInfo
from corral.model.power import HostPowerInfo
from corral.model.task import TaskInfo, TaskState
from corral.model.vm import SnapshotInfo, VmInfo
from corral.model.volume import VolumeInfo


def _of_max(now: str, most: str | None) -> str:
    return f"{now} (at most {most} while running)" if most is not None and most != now else now


def _cpu_text(vm: VmInfo) -> str:
    cpu = vm.cpu
    if cpu is None:
        return "-"
    parts = [cpu.model or "QEMU's default"]
    if cpu.topology is not None:
        parts.append(str(cpu.topology))
    if cpu.nested:
        parts.append("nested virtualization")
    return ", ".join(parts)


def _next_start_text(vm: VmInfo) -> str:
    nxt = vm.next_start
    if nxt is None:
        return ""
    parts = []
    for label, value, unit in (
        ("vCPUs", nxt.vcpus, ""), ("max vCPUs", nxt.max_vcpus, ""),
        ("memory", nxt.memory_mib, " MiB"), ("max memory", nxt.max_memory_mib, " MiB"),
    ):  # fmt: skip
        if value is not None:
            parts.append(f"{label} {value}{unit}")
    if nxt.topology is not None:
        parts.append(f"CPU topology {nxt.topology}")
    return ", ".join(parts)


def vm_details(vm: VmInfo) -> Table:
    rows: list[tuple[str, str | Text]] = [
        ("Name", vm.name),
        ("UUID", vm.uuid),
        ("Host", vm.host),
        ("State", state_text(vm.state)),
        ("Architecture", f"{vm.arch or '-'} ({vm.machine})" if vm.machine else vm.arch or "-"),
        ("vCPUs", _of_max(str(vm.vcpus), str(vm.max_vcpus) if vm.max_vcpus else None)),
        ("Memory", _of_max(human_mib(vm.memory_mib),
                           human_mib(vm.max_memory_mib) if vm.max_memory_mib else None)),
        ("CPU", _cpu_text(vm)),
    ]  # fmt: skip
    if vm.next_start is not None:
        rows.append(("Next start", Text(_next_start_text(vm), style="yellow")))
    return _details(
        [
            *rows,
            ("Uptime", human_duration(vm.uptime_s)),
            ("CPU time", human_duration(vm.cpu_time_s)),
            ("Accelerator", vm.accelerator or "-"),
            ("Adopted", "yes" if vm.adopted else "no"),
            ("HA", "off" if vm.ha_priority is None else f"on, priority {vm.ha_priority}"),
            ("Created", when(vm.created_at)),
            ("Description", vm.description or "-"),
        ]
    )


_PENDING = {"attach": "attached at next start", "detach": "detached at next start"}


def disk_table(vm: VmInfo) -> Table:
    table = _table("DISK", "TARGET", "BUS", "DEVICE", "SIZE", "PATH", "PENDING")
    for disk in vm.disks:
        size = human_bytes(disk.capacity_bytes) if disk.capacity_bytes is not None else "-"
        pending = _PENDING.get(disk.pending or "", "")
        _row(table, disk.name, disk.target, disk.bus, disk.device, size, disk.path, pending)
    return table


def nic_table(vm: VmInfo) -> Table:
    table = _table("MAC", "NETWORK", "MODEL", "PENDING")
    for nic in vm.nics:
        _row(table, nic.mac, nic.network, nic.model, _PENDING.get(nic.pending or "", ""))
    return table


def image_table(images: Iterable[ImageInfo]) -> Table:
    table = _table("NAME", "DOMAIN", "HOST", "KIND", "FORMAT", "SIZE", "USED BY")
    for image in images:
        size = human_bytes(image.capacity_bytes)
        # A shared domain's image serves every host reaching the domain: no one host.
        _row(table, image.name, image.domain, image.host or "-", image.kind, image.format,
             size, ", ".join(image.used_by) or "-")  # fmt: skip
    return table


def volume_table(volumes: Iterable[VolumeInfo]) -> Table:
    table = _table("NAME", "DOMAIN", "HOST", "FORMAT", "SIZE", "ALLOCATED", "USED BY")
    for vol in volumes:
        allocated = "-" if vol.allocation_bytes is None else human_bytes(vol.allocation_bytes)
        if vol.used_by:
            use = ", ".join(vol.used_by)
        elif vol.image is not None:
            use = f"image {vol.image}"
        elif vol.backs:
            use = f"base of {', '.join(vol.backs)}"
        else:
            use = "unused"
        size = human_bytes(vol.capacity_bytes)
        _row(table, vol.name, vol.domain, vol.host, vol.format, size, allocated, use)
    return table


def snapshot_table(snapshots: Iterable[SnapshotInfo]) -> Table:
    table = _table("NAME", "CREATED", "VM STATE", "CURRENT", "DESCRIPTION")
    for snap in snapshots:
        _row(
            table,
            snap.name,
            when(snap.created_at),
            snap.vm_state,
            "*" if snap.current else "",
            snap.description,
        )
    return table


def task_progress_text(task: TaskInfo) -> str:
    if task.bytes_total:
        done = human_bytes(task.bytes_done or 0)
        return f"{task.progress:.0%} ({done} / {human_bytes(task.bytes_total)})"
    return f"{task.progress:.0%}"


def task_table(tasks: Iterable[TaskInfo]) -> Table:
    table = _table("ID", "KIND", "TARGET", "STATE", "PROGRESS", "PHASE", "BY", "CREATED")
    for task in tasks:
        _row(
            table,
            task.id,
            task.kind,
            task.target,
            state_text(task.state),
            task_progress_text(task),
            task.phase,
            task.created_by,
            when(task.created_at),
        )
    return table


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters ("…")."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: max(limit - 1, 0)]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def task_reasons(tasks: Iterable[TaskInfo], width: int) -> list[Text]:
    """One line per task that failed or was cancelled, saying why: ``ID failed: reason``,
    the reason cut to ``width`` (the table's cells are too narrow for a sentence; as pytest's
    short summary, the whole text is one command away: ``corral task show ID``)."""
    lines = []
    for task in tasks:
        if not task.error or task.state not in (TaskState.FAILED, TaskState.CANCELLED):
            continue
        head = f"{task.id} {task.state.value}: "
        line = Text(head, style=STATE_STYLE[task.state])
        line.append(shorten(task.error, max(width - len(head), 20)))
        lines.append(line)
    return lines


def task_details(task: TaskInfo) -> Table:
    return _details(
        [
            ("ID", task.id),
            ("Kind", task.kind),
            ("Target", task.target),
            ("State", state_text(task.state)),
            ("Progress", task_progress_text(task)),
            ("Phase", task.phase or "-"),
            ("Error", Text(task.error, style="red") if task.error else "-"),
            ("Owner", f"{task.owner} (attempt {task.attempt})" if task.owner else "-"),
            ("Created by", task.created_by),
            ("Created", when(task.created_at)),
            ("Updated", when(task.updated_at)),
            ("Finished", when(task.finished_at)),
        ]
    )


_STATUS_STYLE = {
    "connected": "green",
    "unreachable": "bold red",
    "maintenance": "yellow",
    "standby": "cyan",
}


def _status(host: HostInfo) -> Text:
    return Text(host.status.value, style=_STATUS_STYLE.get(host.status.value, ""))


def cert_expiry(host: HostInfo) -> str:
    """When the first of the host's certificates expires, in days ("-": none issued)."""
    if not host.certificates:
        return "-"
    soonest = min(host.certificates, key=lambda cert: cert.not_after)
    days = soonest.expires_in_s / 86400
    return f"{soonest.not_after:%Y-%m-%d} ({days:.0f} d)" if days >= 0 else "EXPIRED"


def host_table(hosts: Iterable[HostInfo]) -> Table:
    table = _table(
        "NAME", "STATUS", "URI", "ACCEL", "CPUS", "MEMORY", "FREE", "CERTS EXPIRE", "LAST ERROR"
    )
    for host in hosts:
        caps = host.capabilities
        _row(
            table,
            host.name,
            _status(host),
            host.uri,
            host.accelerator or (",".join(caps.accelerators) if caps else "-"),
            str(caps.cpus) if caps else "-",
            human_mib(caps.memory_mib) if caps else "-",
            human_mib(caps.free_memory_mib) if caps else "-",
            cert_expiry(host),
            host.last_error or "",
        )
    return table


def host_details(host: HostInfo) -> Table:
    rows: list[tuple[str, str | Text]] = [
        ("Name", host.name),
        ("URI", host.uri),
        ("Status", _status(host)),
        ("Connected", Text("yes", style="green") if host.connected else Text("no", style="red")),
        ("Accelerator", host.accelerator or "best available"),
    ]
    if host.address:
        rows.append(("Address", host.address))
    for cert in host.certificates:
        rows.append(
            (f"Cert {cert.purpose.value}", f"expires {cert.not_after:%Y-%m-%d %H:%M} UTC "
             f"({cert.expires_in_s / 86400:.0f} days), issuer {cert.issuer}")
        )  # fmt: skip
    caps = host.capabilities
    if caps is not None:
        rows += [
            ("Hostname", caps.hostname),
            ("Arch", caps.arch),
            ("CPUs", str(caps.cpus)),
            ("Memory", human_mib(caps.memory_mib)),
            ("Free memory", human_mib(caps.free_memory_mib)),
            ("Accelerators", ", ".join(caps.accelerators) or "-"),
            ("libvirt", caps.libvirt_version),
            ("QEMU", caps.qemu_version or "-"),
            ("Guest archs", ", ".join(caps.architectures) or "-"),
        ]
    if host.last_error:
        rows.append(("Last error", Text(host.last_error, style="red")))
    return _details(rows)


def guest_arch_table(guests: Iterable[GuestArchInfo]) -> Table:
    """What a host runs, one architecture a row (``corral host show``)."""
    table = _table("ARCH", "ACCEL", "DEFAULT MACHINE", "MAX VCPUS", "CONSOLE", "NESTED",
                   "MACHINES", "CPU MODELS")  # fmt: skip
    for guest in guests:
        _row(
            table,
            guest.arch,
            ",".join(guest.accelerators) or "-",
            guest.default_machine or "-",
            str(guest.max_vcpus) if guest.max_vcpus else "-",
            guest.console or "-",
            ",".join(guest.nested) or "no",
            str(len(guest.machines)),
            str(len(guest.cpu_models)),
        )
    return table


def guest_arch_details(guest: GuestArchInfo) -> Table:
    """One architecture in full: every machine type and CPU model."""
    machines = ", ".join(
        f"{m.name} (= {m.canonical}, {m.max_vcpus} vCPUs)" if m.canonical else
        f"{m.name} ({m.max_vcpus} vCPUs)" if m.max_vcpus else m.name
        for m in guest.machines
    )  # fmt: skip
    return _details(
        [
            ("Architecture", guest.arch),
            ("Emulator", guest.emulator),
            ("Accelerators", ", ".join(guest.accelerators) or "-"),
            ("Default machine", guest.default_machine or "-"),
            ("Max vCPUs", str(guest.max_vcpus) if guest.max_vcpus else "-"),
            ("Serial console", guest.console or "-"),
            ("Nested virt.", ", ".join(guest.nested) or "no"),
            ("Machine types", machines or "-"),
            ("CPU models", ", ".join(guest.cpu_models) or "-"),
        ]
    )


def user_table(users: Iterable[UserInfo]) -> Table:
    table = _table("NAME", "ROLE", "CREATED", "DISABLED")
    for user in users:
        _row(table, user.name, user.role, when(user.created_at), "yes" if user.disabled else "")
    return table


def token_table(tokens: Iterable[TokenInfo]) -> Table:
    table = _table("ID", "NAME", "USER", "CREATED", "EXPIRES", "LAST USED", "REVOKED")
    for token in tokens:
        _row(
            table,
            token.id,
            token.name,
            token.user,
            when(token.created_at),
            when(token.expires_at) if token.expires_at else "never",
            when(token.last_used_at),
            "yes" if token.revoked else "",
        )
    return table


def audit_table(entries: Iterable[AuditEntry]) -> Table:
    table = _table("ID", "AT", "USER", "ACTION", "TARGET", "OUTCOME", "DETAIL")
    for entry in entries:
        style = "" if entry.outcome in ("ok", "success", "succeeded") else "red"
        _row(
            table,
            str(entry.id),
            when(entry.at),
            entry.user,
            entry.action,
            entry.target,
            Text(entry.outcome, style=style),
            entry.detail,
        )
    return table


def settings_table(settings: ClusterSettings) -> Table:
    table = _table("SETTING", "VALUE", "MEANING")
    for key, field in type(settings).model_fields.items():
        value = getattr(settings, key)
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        _row(table, key, shown, field.description or "")
    return table


def host_power_details(info: HostPowerInfo) -> Table:
    model = info.model
    rows: list[tuple[str, str | Text]] = [
        ("host", info.host),
        ("driver", info.driver.value if info.driver else "none"),
    ]
    rows += [(key, str(value)) for key, value in info.settings.items() if key != "driver"]
    if info.driver == "ipmi":
        rows.append(("password", "set (encrypted)" if info.password_set else "not set"))
    can = [w for w, ok in (("on", info.can_power_on), ("off", info.can_power_off)) if ok]
    rows.append(("can switch", ", ".join(can) or "-"))
    default = " (cluster default)" if info.model_is_default else ""
    rows.append(
        (
            "power model",
            f"{model.idle_w:g} W idle → {model.max_w:g} W busy, {model.standby_w:g} W standby"
            + default,
        )
    )
    return _details(rows)
