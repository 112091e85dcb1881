"""``corral login``, ``logout`` and ``whoami``."""

from __future__ import annotations

import getpass
import re
import socket
import sys

import typer
from pydantic import ValidationError

from corral.cli import context as c
from corral.cli import credentials
from corral.cli.client import (
    DEFAULT_URL,
    ApiError,
    CliError,
    CorralClient,
    normalize_url,
    parse,
    seg,
    tls_verify,
)
from corral.cli.task import JsonOpt
from corral.cli.units import validation_message
from corral.model.auth import LoginRequest, NewToken, UserInfo


def read_password_stdin() -> str:
    """One line from stdin, without its line ending (``--password-stdin``)."""
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise CliError("--password-stdin: no password on standard input")
    return password


def _default_token_name() -> str:
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip(".-") or "host"
    return f"cli-{host}"[:63]


def login(
    ctx: typer.Context,
    url: str | None = typer.Option(None, "--url", help="Corral's URL (default: global --url)."),
    username: str | None = typer.Option(None, "--username", "-u", help="Your user name."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    token_name: str | None = typer.Option(
        None, "--token-name", help="Name of the API token this login creates."
    ),
    expires_in_days: int | None = typer.Option(
        None,
        "--expires-in-days",
        min=1,
        max=3650,
        help="Days until the token expires (default: the server's api_login_token_days, 30). "
        "Tokens for scripts: `corral token create`.",
    ),
) -> None:
    """Log in and store an API token in the credentials file (mode 0600)."""
    opts = c.options(ctx)
    target = normalize_url(url or opts.url or _stored_url() or DEFAULT_URL)
    if username is None:
        username = typer.prompt("Username", default=getpass.getuser(), err=True)
    password = (
        read_password_stdin()
        if password_stdin
        else typer.prompt("Password", hide_input=True, err=True)
    )
    try:
        body = LoginRequest(
            username=username,
            password=password,
            token_name=token_name or _default_token_name(),
            expires_in_days=expires_in_days,
        )
    except ValidationError as exc:
        c.usage_error(validation_message(exc))
    with CorralClient(target, None, verify=tls_verify(opts.insecure, opts.ca_cert)) as client:
        try:
            # exclude_none: servers from before expires_in_days refuse fields they do not know.
            response = client.post(
                "/auth/login", json=body.model_dump(mode="json", exclude_none=True)
            )
        except ApiError as exc:
            if exc.status == 401:
                raise CliError(f"login failed: {exc.detail}") from None
            raise
        token = parse(response, NewToken)
    path = credentials.save(
        credentials.Credentials(
            url=target, token=token.secret, token_id=token.id, username=username
        )
    )
    expiry = f", expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else ""
    c.info(f"logged in to {target} as {token.user}; token {token.id}{expiry} saved in {path}")


def _stored_url() -> str | None:
    stored = credentials.load()
    return stored.url if stored else None


def logout(ctx: typer.Context) -> None:
    """Revoke the stored token on the server and delete the credentials file."""
    opts = c.options(ctx)
    stored = credentials.load()
    if stored is None:
        credentials.remove()  # an unreadable file is removed all the same
        c.info("not logged in")
        return
    problem: str | None = None
    if stored.token_id is not None:
        verify = tls_verify(opts.insecure, opts.ca_cert)
        with CorralClient(stored.url, stored.token, verify=verify) as client:
            try:
                client.delete(f"/tokens/{seg(stored.token_id)}")
            except ApiError as exc:
                # 401/404: the token is already revoked or expired; nothing left to do.
                if exc.status not in (401, 404):
                    problem = exc.message
            except CliError as exc:
                problem = exc.message
    credentials.remove()
    if problem is not None:
        raise CliError(
            f"removed the local credentials, but could not revoke token {stored.token_id} on "
            f"{stored.url} ({problem}): log in again and run "
            f"`corral token revoke {stored.token_id}`"
        )
    c.info(f"logged out of {stored.url}")


def whoami(ctx: typer.Context, json_out: bool = JsonOpt) -> None:
    """Show who the token belongs to."""
    client = c.client(ctx)
    response = client.get("/auth/whoami")
    user = parse(response, UserInfo)
    c.emit(
        ctx, json_out, response.json(), lambda: c.info(f"{user.name} ({user.role}) at {client.url}")
    )
