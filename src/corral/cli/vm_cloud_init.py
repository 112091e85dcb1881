"""``corral vm cloud-init show|set``: a VM's cloud-init settings (never its user-data or a
password) and replacing them, applied by the guest at its next boot."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from corral.cli import context as c
from corral.cli.client import parse, seg
from corral.cli.task import JsonOpt
from corral.cli.units import validation_message
from corral.cli.vm_create import cloud_init_options
from corral.cloudinit.model import CloudInitConfig, CloudInitInfo

app = typer.Typer(
    help="Show and replace a VM's cloud-init settings.", no_args_is_help=True, cls=c.HelpGroup
)
NameArg = typer.Argument(..., metavar="NAME", help="The VM's name.")


def _details(info: CloudInitInfo) -> str:
    users = ", ".join(
        u.name + (" (sudo)" if u.sudo else "") + f", {len(u.ssh_authorized_keys)} key(s)"
        + (", password set" if u.has_password else "")
        for u in info.users
    )  # fmt: skip
    data = (
        f"{info.user_data.size_bytes} bytes, sha256 {info.user_data.sha256}"
        if info.user_data is not None
        else "none"
    )
    rows = [
        ("hostname", info.hostname or "(the VM's name)"),
        ("users", users or "none"),
        ("keys of the default user", str(len(info.ssh_authorized_keys))),
        ("network", ", ".join(n.model_dump_json(exclude_none=True) for n in info.network) or
         "DHCP on every NIC"),
        ("user-data", data),
        ("instance id", info.instance_id),
        ("set", f"by {info.set_by} at {info.set_at:%Y-%m-%d %H:%M:%S}"),
    ]  # fmt: skip
    return "\n".join(f"{k:>25}: {v}" for k, v in rows)


@app.command("show")
def show(ctx: typer.Context, name: str = NameArg, json_out: bool = JsonOpt) -> None:
    """Show a VM's cloud-init settings (its user-data only by size and SHA-256)."""
    response = c.client(ctx).get(f"/vms/{seg(name)}/cloud-init")
    info = parse(response, CloudInitInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.out.print(_details(info)))


@app.command("set")
def set_settings(
    ctx: typer.Context,
    name: str = NameArg,
    ssh_key: list[Path] = typer.Option(
        [], "--ssh-key", help="A public key file (repeatable) for --user, or the image's user."
    ),
    user_data: Path | None = typer.Option(
        None, "--user-data", help="Your cloud-config (YAML starting with #cloud-config)."
    ),
    hostname: str | None = typer.Option(None, "--hostname", help="The host name the guest takes."),
    user: str | None = typer.Option(None, "--user", help="A user cloud-init creates, with sudo."),
    json_out: bool = JsonOpt,
) -> None:
    """Replace a shut-off VM's cloud-init settings (the guest applies them at its next boot):
    hostname, users, keys and user-data as given here, what you leave out is gone; its
    network settings stay (the API's PUT /vms/NAME/cloud-init replaces those too)."""
    body = cloud_init_options(ssh_key, user_data, hostname, user)
    client = c.client(ctx)
    current = parse(client.get(f"/vms/{seg(name)}/cloud-init"), CloudInitInfo)
    body["network"] = [n.model_dump(mode="json", exclude_none=True) for n in current.network]
    try:
        CloudInitConfig.model_validate(body)
    except ValidationError as exc:
        c.usage_error(validation_message(exc), "NAME")
    response = client.request("PUT", f"/vms/{seg(name)}/cloud-init", json=body)
    info = parse(response, CloudInitInfo)

    def render() -> None:
        c.info(f"replaced the cloud-init settings of VM {name}: its guest applies them at its "
               "next boot")  # fmt: skip
        c.out.print(_details(info))

    c.emit(ctx, json_out, response.json(), render)
