"""The ``corral`` command: assembles the command groups and the global options.

Every command except ``admin``, ``serve`` and ``testbed`` (offline set-up, the server itself,
namespace hosts on this machine) only speaks HTTP to the API through
``corral.cli.client.CorralClient``.
"""

from __future__ import annotations

import os
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import typer

from corral.cli import (
    audit,
    auth,
    cluster,
    host,
    host_nics,
    image,
    network,
    power,
    storage_domain,
    task,
    token,
    user,
    vm,
    volume,
)
from corral.cli import context as c
from corral.cli.client import CliError

app = typer.Typer(
    name="corral",
    help="Corral: manage KVM/QEMU virtual machines through the Corral API.",
    cls=c.CorralGroup,
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
    if not c.out.is_terminal and "COLUMNS" not in os.environ:
        # Piped output is for grep and scripts: don't fold table cells at 80 columns.
        c.out.width = 200


app.command("login")(auth.login)
app.command("logout")(auth.logout)
app.command("whoami")(auth.whoami)
app.command("audit")(audit.audit)
app.add_typer(vm.app, name="vm")
app.add_typer(image.app, name="image")
app.add_typer(volume.app, name="volume")
app.add_typer(storage_domain.app, name="storage-domain")
app.add_typer(task.app, name="task")
host_nics.register(host.app)
app.add_typer(host.app, name="host")
app.add_typer(network.app, name="network")
app.add_typer(cluster.app, name="cluster")
app.add_typer(power.app, name="power")
app.add_typer(user.app, name="user")
app.add_typer(token.app, name="token")


def _forward(ctx: typer.Context, module: str, attr: str) -> None:
    """Run a command defined in ``module`` with the rest of the command line.

    ``admin`` and ``serve`` import the server stack (database, libvirt, FastAPI); loading them
    only when used keeps every other command quick to start.
    """
    try:
        target = getattr(import_module(module), attr)
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
