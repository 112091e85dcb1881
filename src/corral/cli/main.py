"""The ``corral`` command: assembles the command groups and the global options.

Every command except ``admin``, ``serve`` and ``testbed`` (offline set-up, the server itself,
namespace hosts on this machine) only speaks HTTP to the API through
``corral.cli.client.CorralClient``.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer

from corral.cli import context as c
from corral.cli.client import CliError
from corral.cli.lazy import LazyCommand

#: Every command group and most commands load on first use (``lazy.py``): ``corral vm list``
#: imports ``vm.py``, not the modules of ``host``, ``image`` or ``vm create``.
LAZY: dict[str, LazyCommand] = {
    "login": LazyCommand(
        "corral.cli.auth",
        "login",
        "Log in and store an API token in the credentials file (mode 0600).",
    ),
    "logout": LazyCommand(
        "corral.cli.auth",
        "logout",
        "Revoke the stored token on the server and delete the credentials file.",
    ),
    "whoami": LazyCommand("corral.cli.auth", "whoami", "Show who the token belongs to."),
    "audit": LazyCommand("corral.cli.audit", "audit", "Show the audit log, newest first."),
    "vm": LazyCommand("corral.cli.vm", "app", "Virtual machines."),
    "image": LazyCommand(
        "corral.cli.image",
        "app",
        "The image library: ISO, disk and kernel images in storage domains.",
    ),
    "volume": LazyCommand(
        "corral.cli.volume",
        "app",
        "Volumes of storage domains: list, create, resize, delete what nothing uses (admins).",
    ),
    "storage-domain": LazyCommand(
        "corral.cli.storage_domain",
        "app",
        "Storage domains: places for volumes and which hosts reach them.",
    ),
    "task": LazyCommand(
        "corral.cli.task", "app", "Long-running work: list, show, wait for and cancel tasks."
    ),
    "host": LazyCommand("corral.cli.host", "app", "Hypervisor hosts (libvirt daemons)."),
    "network": LazyCommand(
        "corral.cli.network",
        "app",
        "Cluster networks: nat, isolated, bridge (on a labelled NIC) and vxlan, realised on "
        "every host (admins change them).",
    ),
    "cluster": LazyCommand("corral.cli.cluster", "app", "Cluster-wide settings."),
    "backup": LazyCommand(
        "corral.cli.backup", "app", "Backups: stores, keys, listings, verify and restore."
    ),
    "ha": LazyCommand("corral.cli.ha", "app", "High availability: hosts' HA states, VMs waiting."),
    "template": LazyCommand(
        "corral.cli.template",
        "app",
        "Templates: a shut-off VM's disks or a disk image as bases, new VMs made from them.",
    ),
    "power": LazyCommand(
        "corral.cli.power", "app", "Power-aware placement: plans, applying them, host power."
    ),
    "user": LazyCommand("corral.cli.user", "app", "Users and roles (admin)."),
    "token": LazyCommand("corral.cli.token", "app", "API tokens."),
    "completion": LazyCommand(
        "corral.cli.completion",
        "completion",
        "Print the shell completion script for bash, zsh or fish (install it as the README "
        "says: e.g. `source <(corral completion bash)` in ~/.bashrc).",
    ),
}

app = typer.Typer(
    name="corral",
    help="Corral: manage KVM/QEMU virtual machines through the Corral API.",
    cls=c.lazy_group(LAZY, c.CorralGroup),
    no_args_is_help=True,
    # Plain help and usage errors everywhere (sub-groups inherit this): Rich's boxed tables
    # cut long option syntax with "…" at 80 columns and show flags as "<bool>".
    rich_markup_mode=None,
    # Locals in a traceback could include the API token.
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("corral")
        except PackageNotFoundError:
            text = "unknown"
        c.out.print(f"corral {text}", markup=False)
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    url: str | None = typer.Option(
        None,
        "--url",
        envvar="CORRAL_URL",
        help="Corral's URL (default: the logged-in URL, else http://127.0.0.1:8080).",
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="CORRAL_TOKEN",
        help="API token (default: the one `corral login` stored).",
        show_default=False,
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the API's JSON."),
    insecure: bool = typer.Option(
        False, "--insecure", help="Do not verify the server's TLS certificate (test setups only)."
    ),
    ca_cert: str | None = typer.Option(
        None, "--ca-cert", envvar="CORRAL_CA_CERT", help="CA certificate to verify the server."
    ),
    _show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Corral: manage KVM/QEMU virtual machines through the Corral API."""
    ctx.obj = c.CliOptions(
        url=url, token=token or None, json=json_out, insecure=insecure, ca_cert=ca_cert
    )
    c.fresh_consoles()


def _forward(ctx: typer.Context, module: str, attr: str) -> None:
    """Run a command defined in ``module`` with the rest of the command line.

    ``admin`` and ``serve`` import the server stack (database, libvirt, FastAPI); loading them
    only when used keeps every other command quick to start.
    """
    try:
        target = getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise CliError(f"`corral {ctx.info_name}` is not part of this installation") from None
    if isinstance(target, typer.Typer):
        # A group even with one sub-command: `corral admin init` keeps its "init".
        typer.main.get_group(target).main(
            args=ctx.args, prog_name=ctx.command_path, standalone_mode=True
        )
        return
    single = typer.Typer(add_completion=False, rich_markup_mode=None)
    single.command()(target)
    typer.main.get_command(single).main(
        args=ctx.args, prog_name=ctx.command_path, standalone_mode=True
    )


_FORWARD: dict[str, Any] = {
    "context_settings": {"ignore_unknown_options": True, "allow_extra_args": True},
    "add_help_option": False,
}


@app.command("admin", **_FORWARD)
def admin(ctx: typer.Context) -> None:
    """Offline set-up of this installation (database, first admin user)."""
    _forward(ctx, "corral.cli.admin", "app")


@app.command("testbed", **_FORWARD)
def testbed(ctx: typer.Context) -> None:
    """Several libvirt hosts on this machine from namespaces (demos, tests)."""
    _forward(ctx, "corral.cli.testbed", "app")


@app.command("serve", **_FORWARD)
def serve(ctx: typer.Context) -> None:
    """Run the Corral server (API and web UI)."""
    _forward(ctx, "corral.cli.serve", "serve")


if __name__ == "__main__":
    app()
