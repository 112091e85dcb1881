"""``corral user …``: accounts and roles (admin only)."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from corral.cli import context as c
from corral.cli import pages
from corral.cli.auth import read_password_stdin
from corral.cli.client import parse, seg
from corral.cli.output import user_table
from corral.cli.task import JsonOpt
from corral.cli.units import validation_message
from corral.model.auth import Role, UserCreate, UserInfo

app = typer.Typer(help="Users and roles (admin).", no_args_is_help=True, cls=c.HelpGroup)

NameArg = typer.Argument(..., metavar="NAME", help="The user's name.")


@app.command("list")
def list_users(ctx: typer.Context, json_out: bool = JsonOpt) -> None:
    """List users."""
    listing = pages.fetch(c.client(ctx), "/users", {}, limit=None, every=True, what="users")
    users = listing.parsed(UserInfo)
    c.emit(ctx, json_out, listing.json(), lambda: c.out.print(user_table(users)))


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = NameArg,
    role: Role = typer.Option(Role.VIEWER, "--role", help="admin, operator or viewer."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Add a user (the password is asked for twice unless --password-stdin)."""
    if password_stdin:
        password = read_password_stdin()
    else:
        password = typer.prompt(
            f"Password for {name}", hide_input=True, confirmation_prompt=True, err=True
        )
    try:
        body = UserCreate(name=name, password=password, role=role)
    except ValidationError as exc:
        c.usage_error(validation_message(exc))
    response = c.client(ctx).post("/users", json=body.model_dump(mode="json"))
    user = parse(response, UserInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.info(f"added user {user.name} ({user.role})"))


@app.command("remove")
def remove(ctx: typer.Context, name: str = NameArg) -> None:
    """Remove a user."""
    c.client(ctx).delete(f"/users/{seg(name)}")
    c.info(f"removed user {name}")
