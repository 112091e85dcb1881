"""``corral host …``: the libvirt hosts Corral manages."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from corral.cli import context as c
from corral.cli import host_nics, pages
from corral.cli.client import parse, seg
from corral.cli.output import (
    guest_arch_details,
    guest_arch_table,
    host_details,
    host_power_details,
    host_table,
)
from corral.cli.task import JsonOpt, follow_task
from corral.cli.transport import Response
from corral.cli.units import validation_message
from corral.model.ha import HostHa
from corral.model.host import (
    HostAgentInfo,
    HostBundle,
    HostBundleRequest,
    HostCreate,
    HostEnroll,
    HostInfo,
    RotateCertsRequest,
    SshAccess,
)
from corral.model.power import HostPowerInfo, HostPowerSettings
from corral.model.vm import Accelerator

app = typer.Typer(help="Hypervisor hosts (libvirt daemons).", no_args_is_help=True, cls=c.HelpGroup)

NameArg = typer.Argument(..., metavar="NAME", help="The host's name in Corral.")


@app.command("list")
def list_hosts(ctx: typer.Context, json_out: bool = JsonOpt) -> None:
    """List hosts, their connection state and capacity."""
    listing = pages.fetch(c.client(ctx), "/hosts", {}, limit=None, every=True, what="hosts")
    hosts = listing.parsed(HostInfo)
    c.emit(ctx, json_out, listing.json(), lambda: c.out.print(host_table(hosts)))


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = NameArg,
    arch: str | None = typer.Option(
        None, "--arch", help="Every machine type and CPU model of this guest architecture."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Show one host, what libvirt reports about it, and the guest architectures it runs
    (machine types, max vCPUs, CPU models, nesting)."""
    response = c.client(ctx).get(f"/hosts/{seg(name)}")
    host = parse(response, HostInfo)
    guests = (host.capabilities.guests if host.capabilities else None) or []
    chosen = [g for g in guests if g.arch == arch] if arch else guests
    if arch is not None and not chosen:
        known = ", ".join(g.arch for g in guests) or "none"
        c.usage_error(f"host {name} runs no {arch} guests; it runs {known}", "--arch")

    def render() -> None:
        if arch is not None:
            c.out.print(guest_arch_details(chosen[0]))
            return
        c.out.print(host_details(host))
        if guests:
            c.out.print()
            c.out.print(guest_arch_table(guests))

    c.emit(ctx, json_out, response.json(), render)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = NameArg,
    uri: str = typer.Argument(..., metavar="URI", help="libvirt URI, e.g. qemu+tls://h2/system."),
    accelerator: Accelerator | None = typer.Option(
        None, "--accelerator", help="Force kvm or tcg on this host (default: best available)."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Add a host (admin)."""
    try:
        body = HostCreate(name=name, uri=uri, accelerator=accelerator)
    except ValidationError as exc:
        c.usage_error(validation_message(exc))
    response = c.client(ctx).post("/hosts", json=body.model_dump(mode="json", exclude_none=True))
    host = parse(response, HostInfo)
    state = "connected" if host.connected else f"not connected: {host.last_error or 'unknown'}"
    c.emit(ctx, json_out, response.json(), lambda: c.info(f"added host {host.name} ({state})"))


@app.command("remove")
def remove(ctx: typer.Context, name: str = NameArg) -> None:
    """Remove a host without VMs (admin)."""
    c.client(ctx).delete(f"/hosts/{seg(name)}")
    c.info(f"removed host {name}")


SshOpt = typer.Option(
    None, "--ssh", metavar="USER@HOST", help="Log in over SSH as USER@HOST (normally root@ADDRESS)."
)
SshKeyOpt = typer.Option(
    None,
    "--ssh-key",
    metavar="PATH",
    help="Private key file on the Corral server (default: ssh's).",
)
SshPortOpt = typer.Option(22, "--ssh-port", help="SSH port.")
NoWaitOpt = typer.Option(False, "--no-wait", help="Print the task id instead of waiting.")


def _ssh(destination: str, key: str | None, port: int) -> SshAccess:
    key_path = str(Path(key).expanduser().resolve()) if key else None
    try:
        return SshAccess(destination=destination, port=port, key_path=key_path)
    except ValidationError as exc:
        c.usage_error(validation_message(exc), "--ssh")


@app.command("enroll")
def enroll(
    ctx: typer.Context,
    name: str = NameArg,
    address: str = typer.Argument(
        ...,
        metavar="ADDRESS",
        help="IP address or DNS name of the host (its certificates name it).",
    ),
    ssh: str | None = SshOpt,
    ssh_key: str | None = SshKeyOpt,
    ssh_port: int = SshPortOpt,
    bundle: Path | None = typer.Option(
        None, "--bundle", metavar="DIR", help="Write the files and an install.sh to DIR instead."
    ),
    accelerator: Accelerator | None = typer.Option(
        None, "--accelerator", help="Force kvm or tcg on this host (default: best available)."
    ),
    no_wait: bool = NoWaitOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Enroll a host (admin): certificates, libvirtd and QEMU TLS configuration, qemu+tls.

    Over SSH (--ssh root@ADDRESS) Corral installs everything and connects; a failure at any
    step leaves the host as it was. With --bundle DIR it writes the files and an install.sh to
    run on the host by hand, then `corral host add NAME URI` (the URI is printed) finishes.
    """
    if (ssh is None) == (bundle is None):
        c.usage_error("give either --ssh USER@HOST or --bundle DIR", "--ssh")
    client = c.client(ctx)
    if bundle is not None:
        try:
            body = HostBundleRequest(name=name, address=address)
        except ValidationError as exc:
            c.usage_error(validation_message(exc))
        _write_bundle(ctx, client.post("/host-bundles", json=body.model_dump(mode="json")), bundle)
        return
    assert ssh is not None
    try:
        request = HostEnroll(
            name=name, address=address, ssh=_ssh(ssh, ssh_key, ssh_port), accelerator=accelerator
        )
    except ValidationError as exc:
        c.usage_error(validation_message(exc))
    payload = request.model_dump(mode="json", exclude_none=True)
    response = client.post("/host-enrollments", json=payload)
    task = follow_task(ctx, response, no_wait=no_wait, json_flag=json_out)
    if task is not None:
        uri = (task.result or {}).get("uri")
        c.emit(
            ctx, json_out, task.model_dump(mode="json"),
            lambda: c.info(f"enrolled host {name}: connected over {uri}"),
        )  # fmt: skip


def _write_bundle(ctx: typer.Context, response: Response, directory: Path) -> None:
    from corral.hostsetup.bundle import write_bundle

    bundle = parse(response, HostBundle)
    try:
        write_bundle(directory, [(f.path, f.content.encode(), f.mode) for f in bundle.files])
    except (OSError, ValueError) as exc:
        c.usage_error(str(exc), "--bundle")
    c.info(
        f"wrote {len(bundle.files)} files to {directory} (keys included: keep it private).\n"
        f"Copy it to the host and run install.sh there as root, then:\n"
        f"    corral host add {bundle.name} '{bundle.uri}'"
    )


@app.command("maintenance")
def maintenance(
    ctx: typer.Context,
    name: str = NameArg,
    state: str = typer.Argument(..., metavar="on|off", help="on: take no new VMs; off: back."),
    json_out: bool = JsonOpt,
) -> None:
    """Put a host in maintenance (no new VMs go there) or take it out (admin)."""
    if state not in ("on", "off"):
        c.usage_error("say on or off", "state")
    response = c.client(ctx).request(
        "PUT", f"/hosts/{seg(name)}/maintenance", json={"enabled": state == "on"}
    )
    host = parse(response, HostInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.info(f"host {host.name}: {host.status}"))


@app.command("confirm-down")
def confirm_down(ctx: typer.Context, name: str = NameArg, json_out: bool = JsonOpt) -> None:
    """Say that a silent host is off, when fencing cannot prove it (no BMC, or a dead one):
    its HA VMs then restart elsewhere. Refused while the host answers (admin)."""
    response = c.client(ctx).request("POST", f"/hosts/{seg(name)}/confirm-down")
    found = parse(response, HostHa)
    c.emit(
        ctx,
        json_out,
        response.json(),
        lambda: c.info(f"host {found.host}: {found.state.value} ({found.reason})"),
    )


@app.command("agent")
def agent(ctx: typer.Context, name: str = NameArg, json_out: bool = JsonOpt) -> None:
    """Check the host agent on a host, installing it first if it is missing or of another
    version (admin)."""
    response = c.client(ctx).request("POST", f"/hosts/{seg(name)}/agent")
    info = parse(response, HostAgentInfo)
    c.emit(
        ctx,
        json_out,
        response.json(),
        lambda: c.info(f"host {info.host}: agent {info.version} (Python {info.python})"),
    )


@app.command("rotate-certs")
def rotate_certs(
    ctx: typer.Context,
    name: str = NameArg,
    ssh: str | None = SshOpt,
    ssh_key: str | None = SshKeyOpt,
    ssh_port: int = SshPortOpt,
    no_wait: bool = NoWaitOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Issue new certificates for an enrolled host and install them over SSH (admin), with its
    configuration as the cluster's settings want it now; running guests' VNC servers switch to
    the new certificate."""
    body = RotateCertsRequest(ssh=_ssh(ssh, ssh_key, ssh_port) if ssh else None)
    response = c.client(ctx).post(
        f"/hosts/{seg(name)}/rotate-certs", json=body.model_dump(mode="json", exclude_none=True)
    )
    task = follow_task(ctx, response, no_wait=no_wait, json_flag=json_out)
    if task is not None:
        reloaded = (task.result or {}).get("vnc_reloaded", [])
        c.emit(
            ctx, json_out, task.model_dump(mode="json"),
            lambda: c.info(
                f"new certificates on host {name}; VNC reloaded in {len(reloaded)} running VM(s)"
            ),
        )  # fmt: skip


@app.command("evacuate")
def evacuate(
    ctx: typer.Context,
    name: str = NameArg,
    transport: str | None = typer.Option(
        None, "--transport", help="How the VMs move (default: tls, QEMU native TLS)."
    ),
    no_wait: bool = NoWaitOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Put a host in maintenance and live-migrate every VM off it, each to the connected host
    with the most free memory (admin)."""
    body = {"transport": transport} if transport else {}
    response = c.client(ctx).post(f"/hosts/{seg(name)}/evacuate", json=body)
    task = follow_task(ctx, response, no_wait=no_wait, json_flag=json_out)
    if task is not None:
        moved = (task.result or {}).get("moved", [])
        where = ", ".join(f"{m['vm']} → {m['to']}" for m in moved) or "no VMs to move"
        c.emit(
            ctx, json_out, task.model_dump(mode="json"),
            lambda: c.info(f"host {name} is empty and in maintenance ({where})"),
        )  # fmt: skip


def _wake(mac: str | None, broadcast: str | None) -> dict[str, object] | None:
    if mac is None:
        if broadcast is not None:
            c.usage_error("--wake-broadcast needs --wake-mac", "--wake-broadcast")
        return None
    return {"mac": mac, **({"broadcast": broadcast} if broadcast else {})}


def _read_password(path: Path) -> str:
    try:
        return path.read_text().rstrip("\r\n")
    except OSError as exc:
        c.usage_error(f"cannot read {path}: {exc.strerror or exc}", "--password-file")


@app.command("power")
def power(
    ctx: typer.Context,
    name: str = NameArg,
    driver: str | None = typer.Option(
        None, "--driver", help="ipmi, wol, suspend, ssh, or none (remove). Without it: show."
    ),
    address: str | None = typer.Option(None, "--address", help="ipmi: the BMC's address."),
    port: int | None = typer.Option(None, "--port", help="ipmi: UDP port (623); wol: (9)."),
    user: str | None = typer.Option(None, "--user", help="ipmi: the BMC user."),
    password_file: Path | None = typer.Option(
        None, "--password-file", help="ipmi: a file holding the BMC password (stored encrypted)."
    ),
    mac: str | None = typer.Option(None, "--mac", help="wol: the host's MAC address."),
    broadcast: str | None = typer.Option(
        None, "--broadcast", help="wol: the broadcast address (255.255.255.255)."
    ),
    target: str | None = typer.Option(None, "--target", help="suspend: mem, disk or hybrid."),
    duration: int | None = typer.Option(
        None, "--duration", help="suspend: seconds until the RTC wakes it (0: never)."
    ),
    action: str | None = typer.Option(None, "--action", help="ssh: poweroff or suspend."),
    wake_mac: str | None = typer.Option(
        None, "--wake-mac", help="suspend/ssh: wake with Wake-on-LAN to this MAC."
    ),
    wake_broadcast: str | None = typer.Option(
        None, "--wake-broadcast", help="suspend/ssh: the broadcast address for --wake-mac."
    ),
    idle_w: float | None = typer.Option(None, "--idle-w", help="Power model: watts idle."),
    max_w: float | None = typer.Option(None, "--max-w", help="Power model: watts at full CPU."),
    standby_w: float | None = typer.Option(None, "--standby-w", help="Watts in standby."),
    json_out: bool = JsonOpt,
) -> None:
    """Show or set how Corral switches a host on and off (admin to set).

    corral host power h3 --driver ipmi --address 10.0.0.13 --user admin --password-file pw
    """
    client = c.client(ctx)
    path = f"/hosts/{seg(name)}/power"
    model_given = any(v is not None for v in (idle_w, max_w, standby_w))
    if driver is None and not model_given:
        response = client.get(path)
        info = parse(response, HostPowerInfo)
        c.emit(ctx, json_out, response.json(), lambda: c.out.print(host_power_details(info)))
        return
    if driver == "none":
        current = parse(client.get(path), HostPowerInfo)
        keep = None if current.model_is_default else current.model.model_dump()
        response = client.request("PUT", path, json={"driver": None, "model": keep})
        parse(response, HostPowerInfo)
        c.info(f"host {name} has no power driver now")
        return
    config = _driver_config(
        driver,
        address=address,
        user=user,
        port=port,
        password_file=password_file,
        mac=mac,
        broadcast=broadcast,
        wake=(wake_mac, wake_broadcast),
        target=target,
        duration=duration,
        action=action,
    )
    if driver is None:  # only the model changes: keep the driver as it is
        current = parse(client.get(path), HostPowerInfo)
        config = dict(current.settings) if current.driver else None
    model = None
    if model_given:
        model = {
            k: v
            for k, v in (("idle_w", idle_w), ("max_w", max_w), ("standby_w", standby_w))
            if v is not None
        }
    try:
        body = HostPowerSettings.model_validate({"driver": config, "model": model})
    except ValidationError as exc:
        c.usage_error(validation_message(exc))
    response = client.request("PUT", path, json=body.model_dump(mode="json", exclude_none=True))
    info = parse(response, HostPowerInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.out.print(host_power_details(info)))


def _driver_config(
    driver: str | None,
    *,
    address: str | None,
    user: str | None,
    port: int | None,
    password_file: Path | None,
    mac: str | None,
    broadcast: str | None,
    wake: tuple[str | None, str | None],
    target: str | None,
    duration: int | None,
    action: str | None,
) -> dict[str, object] | None:
    """The driver settings the options describe (None: no driver named)."""
    config: dict[str, object] | None = None
    if driver == "ipmi":
        if address is None or user is None:
            c.usage_error("ipmi needs --address and --user", "--driver")
        config = {"driver": "ipmi", "address": address, "user": user}
        if port is not None:
            config["port"] = port
        if password_file is not None:
            config["password"] = _read_password(password_file)
    elif driver == "wol":
        if mac is None:
            c.usage_error("wol needs --mac", "--mac")
        config = {"driver": "wol", "mac": mac}
        if broadcast:
            config["broadcast"] = broadcast
        if port is not None:
            config["port"] = port
    elif driver in ("suspend", "ssh"):
        config = {"driver": driver, "wake": _wake(*wake)}
        if driver == "suspend":
            config |= {"target": target or "mem", "duration_s": duration or 0}
        else:
            config["action"] = action or "poweroff"
    elif driver is not None:
        c.usage_error(f"unknown driver {driver!r}: ipmi, wol, suspend, ssh or none", "--driver")
    return config


@app.command("power-on")
def power_on(
    ctx: typer.Context, name: str = NameArg, no_wait: bool = NoWaitOpt, json_out: bool = JsonOpt
) -> None:
    """Switch a host on through its driver and wait until libvirt answers (admin)."""
    response = c.client(ctx).post(f"/hosts/{seg(name)}/power-on")
    task = follow_task(ctx, response, no_wait=no_wait, json_flag=json_out)
    if task is not None:
        c.emit(ctx, json_out, task.model_dump(mode="json"), lambda: c.info(f"host {name} is on"))


@app.command("power-off")
def power_off(
    ctx: typer.Context, name: str = NameArg, no_wait: bool = NoWaitOpt, json_out: bool = JsonOpt
) -> None:
    """Put an empty host in standby through its driver (admin)."""
    response = c.client(ctx).post(f"/hosts/{seg(name)}/power-off")
    task = follow_task(ctx, response, no_wait=no_wait, json_flag=json_out)
    if task is not None:
        c.emit(
            ctx, json_out, task.model_dump(mode="json"),
            lambda: c.info(f"host {name} is in standby"),
        )  # fmt: skip


host_nics.register(app)
