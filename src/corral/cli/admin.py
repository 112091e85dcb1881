"""``corral admin``: offline set-up of a fresh installation (database, first admin), and the
secrets several instances share (``export-secrets``, ``import-secrets``).

These commands open the database directly (not the API): they run before any server exists.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from corral import store
from corral.cli import credentials
from corral.cli.context import HelpGroup
from corral.config import load_settings
from corral.errors import InvalidRequest
from corral.model.auth import Role
from corral.pki import ClusterPki
from corral.pki.shared import export_bundle, import_bundle
from corral.services._db import Db
from corral.services.auth import create_user_offline
from corral.services.passwords import generate_password
from corral.serving import plan_serving

app = typer.Typer(
    help="Offline administration of this installation.",
    no_args_is_help=True,
    cls=HelpGroup,
    rich_markup_mode=None,
)
_out = Console()


@app.command("init")
def init(
    admin_name: str = typer.Option("admin", "--admin", help="Name of the first admin user."),
    if_needed: bool = typer.Option(
        False, "--if-needed", help="Do nothing (successfully) when users already exist."
    ),
    save_login: bool = typer.Option(
        True,
        "--save-login/--no-save-login",
        help="Also store an API token for this machine's `corral` CLI (mode 0600).",
    ),
) -> None:
    """Create (or migrate) the database, the cluster's CAs and the first admin; print the
    admin's password once."""
    settings = load_settings()
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for done in ClusterPki(settings.data_dir).ensure():
        _out.print(f"PKI: {done}")
    db = Db(store.Store.from_url(settings.effective_database_url))
    try:
        users = db.sync(store.list_users)
        if users:
            if if_needed:
                _out.print(f"database ready ({len(users)} user(s)); nothing to initialise")
                return
            _out.print("[red]error:[/] this installation already has users; nothing changed")
            raise typer.Exit(1)
        password = generate_password()
        create_user_offline(db, admin_name, password, Role.ADMIN)
        _out.print(f"Created admin user [bold]{admin_name}[/]. Its password is shown only now:")
        _out.print(f"\n    {password}\n", markup=False, highlight=False)
        if save_login:
            info, secret = db.sync(lambda s: store.create_token(s, admin_name, "local-cli"))
            try:
                serving = plan_serving(settings)
            except InvalidRequest as exc:
                _out.print(f"[red]error:[/] {exc.message}", markup=True, highlight=False)
                raise typer.Exit(2) from None
            path = credentials.save(
                credentials.Credentials(
                    url=serving.local_url(settings),
                    token=secret,
                    token_id=info.id,
                    username=admin_name,
                    ca_cert=str(serving.ca_cert) if serving.ca_cert else None,
                )
            )
            _out.print(f"The local `corral` CLI is logged in as {admin_name} ({path}).")
    finally:
        db.store.dispose()


def _passphrase(passphrase_file: Path | None, *, confirm: bool) -> str:
    if passphrase_file is not None:
        return passphrase_file.read_text().strip()
    return str(typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm))


_PASSPHRASE_FILE = typer.Option(
    None,
    "--passphrase-file",
    help="Read the passphrase from this file (first line) instead of asking for it.",
    exists=True,
    dir_okay=False,
)


@app.command("export-secrets")
def export_secrets(
    file: Path = typer.Argument(..., help="Where to write the secrets (created mode 0600)."),
    passphrase_file: Path | None = _PASSPHRASE_FILE,
) -> None:
    """Write what every instance of this cluster must share (its CAs and Corral's
    certificates, the power secrets key, SSH known hosts) into FILE, sealed with a passphrase
    (at least 12 characters): for `corral admin import-secrets` on another instance."""
    settings = load_settings()
    try:
        bundle = export_bundle(settings.data_dir, _passphrase(passphrase_file, confirm=True))
    except InvalidRequest as exc:
        _out.print(f"[red]error:[/] {exc.message}", highlight=False)
        raise typer.Exit(1) from None
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(bundle)
    _out.print(f"wrote the cluster's shared secrets to {file}; keep it as safe as the keys")


@app.command("import-secrets")
def import_secrets(
    file: Path = typer.Argument(..., help="A file of `corral admin export-secrets`.", exists=True),
    passphrase_file: Path | None = _PASSPHRASE_FILE,
) -> None:
    """Take the cluster's shared secrets from FILE into this instance's data directory
    (replacing its own); then start (or restart) `corral serve`."""
    settings = load_settings()
    try:
        names = import_bundle(
            settings.data_dir, file.read_bytes(), _passphrase(passphrase_file, confirm=False)
        )
    except InvalidRequest as exc:
        _out.print(f"[red]error:[/] {exc.message}", highlight=False)
        raise typer.Exit(1) from None
    _out.print(f"imported {len(names)} files into {settings.data_dir}; restart `corral serve`")
