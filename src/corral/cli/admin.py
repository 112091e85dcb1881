"""``corral admin``: offline set-up of a fresh installation (database, first admin).

These commands open the database directly (not the API): they run before any server exists.
"""

from __future__ import annotations

import typer
from rich.console import Console

from corral import store
from corral.cli import credentials
from corral.cli.context import HelpGroup
from corral.config import load_settings
from corral.errors import InvalidRequest
from corral.model.auth import Role
from corral.pki import ClusterPki
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
