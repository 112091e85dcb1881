"""``corral token …``: API tokens for scripts and other tools."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from corral.cli import context as c
from corral.cli import pages
from corral.cli.client import parse, seg
from corral.cli.output import token_table
from corral.cli.task import JsonOpt
from corral.cli.units import validation_message
from corral.model.auth import NewToken, TokenCreate, TokenInfo

app = typer.Typer(help="API tokens.", no_args_is_help=True, cls=c.HelpGroup)


@app.command("list")
def list_tokens(ctx: typer.Context, json_out: bool = JsonOpt) -> None:
    """List your tokens (an admin sees everyone's). Secrets are never shown again."""
    listing = pages.fetch(c.client(ctx), "/tokens", {}, limit=None, every=True, what="tokens")
    tokens = listing.parsed(TokenInfo)
    c.emit(ctx, json_out, listing.json(), lambda: c.out.print(token_table(tokens)))


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="What the token is for."),
    expires_in_days: int | None = typer.Option(
        None, "--expires-in-days", min=1, max=3650, help="Expire after this many days."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Create a token and print its secret (shown this once only)."""
    try:
        body = TokenCreate(name=name, expires_in_days=expires_in_days)
    except ValidationError as exc:
        c.usage_error(validation_message(exc), "NAME")
    response = c.client(ctx).post("/tokens", json=body.model_dump(mode="json", exclude_none=True))
    token = parse(response, NewToken)

    def render() -> None:
        c.err.print(
            f"created token {token.id} ({token.name}); its secret is shown only now:",
            markup=False,
        )
        # The secret alone on stdout, so `secret=$(corral token create ci)` works.
        c.out.print(token.secret, markup=False)

    c.emit(ctx, json_out, response.json(), render)


@app.command("revoke")
def revoke(ctx: typer.Context, token_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Revoke a token at once."""
    c.client(ctx).delete(f"/tokens/{seg(token_id)}")
    c.info(f"revoked token {token_id}")
