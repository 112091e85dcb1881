"""What every command shares: global options, the client, output and error reporting.

Results go to stdout (tables, or the API's JSON with ``--json``); progress bars, confirmations
and errors go to stderr so that ``corral … --json | jq`` and ``id=$(corral … --no-wait)`` work.
"""

from __future__ import annotations

import difflib
import inspect
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer._click.exceptions import UsageError
from typer._click.shell_completion import CompletionItem
from typer.core import TyperGroup

from corral.cli import credentials, params
from corral.cli.client import (
    DEFAULT_URL,
    ApiError,
    CliError,
    CorralClient,
    normalize_url,
    tls_verify,
)
from corral.cli.lazy import LazyCommand, load_command

params.install()

out = Console(highlight=False, soft_wrap=False, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)


def fresh_consoles() -> None:
    """New stdout and stderr consoles for this invocation. Rich fixes a console's width from
    COLUMNS when the console is made: consoles made once would keep the width of whichever
    invocation came first in a process that runs several (the tests, a program embedding the
    CLI)."""
    global out, err
    # Piped output is for grep and scripts: don't fold table cells at 80 columns.
    piped = not Console().is_terminal and "COLUMNS" not in os.environ
    # No emoji codes: a VM or host named "x:fire:y" is printed as it is (and Rich's table of
    # emoji codes is not imported by every command).
    out = Console(highlight=False, soft_wrap=False, emoji=False, width=200 if piped else None)
    err = Console(stderr=True, highlight=False, emoji=False)


NOT_LOGGED_IN = "not logged in or token revoked: run `corral login`"

JsonOpt = typer.Option(False, "--json", help="Print the API's JSON.")


@dataclass
class CliOptions:
    """The global options (``corral --url … --token … COMMAND``), resolved once."""

    url: str | None = None
    token: str | None = field(default=None, repr=False)
    json: bool = False
    insecure: bool = False
    ca_cert: str | None = None
    _client: CorralClient | None = field(default=None, repr=False)

    def resolved(self) -> tuple[str, str | None]:
        """URL and token: options/env first, then the credentials file, then the default URL.

        A stored token is only sent to the URL it was issued by: pointing the CLI at another
        server must not hand that server our secret.
        """
        stored = credentials.load()
        url = normalize_url(self.url or (stored.url if stored else DEFAULT_URL))
        token = self.token
        if token is None and stored is not None and normalize_url(stored.url) == url:
            token = stored.token
        return url, token

    def client(self) -> CorralClient:
        if self._client is None:
            url, token = self.resolved()
            ca_cert = self.ca_cert
            stored = credentials.load()
            if ca_cert is None and stored is not None and normalize_url(stored.url) == url:
                ca_cert = stored.ca_cert  # the CA `corral admin init` recorded for this server
            self._client = CorralClient(url, token, verify=tls_verify(self.insecure, ca_cert))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def options(ctx: typer.Context) -> CliOptions:
    """The global options of this invocation (defaults when a sub-app runs on its own)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliOptions):
        root.obj = CliOptions(
            url=os.environ.get("CORRAL_URL"), token=os.environ.get("CORRAL_TOKEN")
        )
    return root.obj


def client(ctx: typer.Context) -> CorralClient:
    return options(ctx).client()


def want_json(ctx: typer.Context, local_flag: bool) -> bool:
    return local_flag or options(ctx).json


def print_json(data: Any) -> None:
    """The API's JSON, unchanged apart from indentation (plain write: no Rich wrapping)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def emit(ctx: typer.Context, json_flag: bool, data: Any, render: Callable[[], None]) -> None:
    """Print ``data`` as JSON when asked, else call ``render``."""
    if want_json(ctx, json_flag):
        print_json(data)
    else:
        render()


def info(message: str) -> None:
    """A one-line human confirmation on stdout ("started VM web1")."""
    out.print(message, markup=False)


def usage_error(message: str, param: str | None = None) -> NoReturn:
    """Exit 2 like Typer does for bad options."""
    raise typer.BadParameter(message, param_hint=param)


def report_error(exc: CliError) -> None:
    """``error: <detail>`` in red on stderr, with 422 field errors the detail does not repeat."""
    if isinstance(exc, ApiError) and exc.status == 401:
        message = NOT_LOGGED_IN
        if "expire" in exc.detail.lower():
            # The one server reason worth adding; others repeat "send a token" in other words.
            message += f" ({exc.detail})"
    else:
        message = exc.message
    err.print(f"[bold red]error:[/] [red]{escape(message)}[/]")
    if isinstance(exc, ApiError):
        for item in exc.errors:
            line = f"{item.loc}: {item.msg}" if item.loc else item.msg
            if line not in exc.detail:
                err.print(f"  [red]{escape(line)}[/]")


class HelpGroup(TyperGroup):
    """A command group whose help lists each sub-command's first paragraph in full, wrapped,
    and whose ``lazy`` commands are imported only when used (see ``corral.cli.lazy``).

    Click shortens a summary to what fits on one line, cut with "..." (or at the "." of "e.g.").
    Every group of the ``corral`` command uses this class (``typer.Typer(cls=HelpGroup)``, or
    ``cls=lazy_group({...})`` for one with lazy commands).
    """

    #: Commands imported on first use, listed first, in this order.
    lazy: ClassVar[Mapping[str, LazyCommand]] = {}

    # ``Any``: the base class types these with Typer's private vendored click classes.
    def list_commands(self, ctx: Any) -> list[str]:
        own = super().list_commands(ctx)
        return [*self.lazy, *(name for name in own if name not in self.lazy)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        entry = self.lazy.get(cmd_name)
        if command is None and entry is not None:
            command = load_command(
                cmd_name,
                entry,
                rich_markup_mode=self.rich_markup_mode,
                suggest_commands=self.suggest_commands,
            )
            self.add_command(command, cmd_name)
        return command

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            # Typer suggests from the loaded commands only.
            if self.lazy and args and "Did you mean" not in exc.message:
                close = difflib.get_close_matches(args[0], self.list_commands(ctx))
                if close:
                    names = ", ".join(repr(name) for name in close)
                    exc.message = f"{exc.message.rstrip('.')}. Did you mean {names}?"
            raise

    def summaries(self, ctx: Any, prefix: str = "") -> list[tuple[str, str]]:
        """(name, first paragraph) of each visible sub-command starting with ``prefix``; lazy
        ones not loaded yet from their table, so help and completion import nothing."""
        rows = []
        for name in self.list_commands(ctx):
            if not name.startswith(prefix):
                continue
            entry = self.lazy.get(name)
            if entry is not None and name not in self.commands:
                rows.append((name, entry.summary))
                continue
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            text = inspect.cleandoc(command.short_help or command.help or "")
            rows.append((name, " ".join(text.split("\n\n")[0].split())))
        return rows

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = self.summaries(ctx)
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def shell_complete(self, ctx: Any, incomplete: str) -> list[Any]:
        # The options (a "-" prefix) as click completes them; sub-commands from ``summaries``.
        items: list[Any] = super(TyperGroup, self).shell_complete(ctx, incomplete)
        return [*(CompletionItem(n, help=h) for n, h in self.summaries(ctx, incomplete)), *items]


def lazy_group(
    commands: Mapping[str, LazyCommand], base: type[HelpGroup] = HelpGroup
) -> type[HelpGroup]:
    """A ``HelpGroup`` class with ``commands`` as its ``lazy`` ones (``typer.Typer(cls=…)``)."""
    return type(base.__name__, (base,), {"lazy": dict(commands)})


class CorralGroup(HelpGroup):
    """Root command group: turns ``CliError`` from any command into ``error: …`` and an exit code.

    One place for this (rather than a decorator per command), like httpx's single exception map.
    """

    # ``Any``: the base class types ``ctx`` with Typer's private vendored click Context.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as exc:
            report_error(exc)
            raise typer.Exit(exc.exit_code) from None
        finally:
            if isinstance(ctx.obj, CliOptions):
                ctx.obj.close()
