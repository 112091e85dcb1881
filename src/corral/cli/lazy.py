"""Commands whose module is imported only when they run, are completed or have their help shown.

Every ``corral`` invocation runs one command, yet importing every command module costs over a
second (pydantic models, websockets, numpy for screenshots); ``corral vm list`` should answer
about as fast as ``virsh list``. A group names its lazy commands in a ``LazyCommand`` table (see
``context.HelpGroup.lazy``): the group's help and shell completion read the one-line summary
kept there, and the module is imported on first use of the command itself.
``tests/unit/cli/test_cli_imports.py`` checks each summary against the loaded command's help.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

import typer
import typer.main
from typer.models import CommandInfo, TyperInfo


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives: ``module``'s ``attr``, a function or a ``typer.Typer`` group.

    ``command`` picks one command of that group instead (several commands defined in one
    module's app, like ``vm start``/``vm stop``). ``summary`` is what the parent group's help
    and shell completion show without importing the module: the help's first paragraph.
    """

    module: str
    attr: str
    summary: str
    command: str | None = None


def load_command(
    name: str, entry: LazyCommand, *, rich_markup_mode: Any, suggest_commands: bool
) -> Any:
    """The click command ``entry`` stands for, named ``name``, built the way ``add_typer`` and
    ``app.command`` build it (``Any``: Typer's vendored click classes are private)."""
    target = getattr(import_module(entry.module), entry.attr)
    if isinstance(target, typer.Typer):
        group = typer.main.get_group_from_info(
            TyperInfo(target, name=name),
            pretty_exceptions_short=True,
            suggest_commands=suggest_commands,
            rich_markup_mode=rich_markup_mode,
        )
        if entry.command is None:
            return group
        command = group.commands[entry.command]
        command.name = name
        return command
    return typer.main.get_command_from_info(
        CommandInfo(name=name, callback=target),
        pretty_exceptions_short=True,
        rich_markup_mode=rich_markup_mode,
    )
