"""Every command's ``--help`` at 80 columns: one plain style, nothing cut, nothing too wide."""

from __future__ import annotations

import inspect
from importlib import import_module
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from corral.cli.context import HelpGroup
from corral.cli.main import app

#: Commands that hand the rest of the command line to an app of their own (see main._forward).
FORWARDED = {
    "admin": ("corral.cli.admin", "app"),
    "testbed": ("corral.cli.testbed", "app"),
    "serve": ("corral.cli.serve", "serve"),
}
BOX = set("╭╮╰╯│─┃━")


def _command_of(target: Any) -> Any:
    if isinstance(target, typer.Typer):
        return typer.main.get_group(target)
    single = typer.Typer(add_completion=False)
    single.command()(target)
    return typer.main.get_command(single)


def _walk(command: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    """(argument path, click command) of ``command`` and everything below it."""
    if path and path[0] in FORWARDED and len(path) == 1:
        command = _command_of(getattr(import_module(FORWARDED[path[0]][0]), FORWARDED[path[0]][1]))
    found = [(path, command)]
    # ``list_commands``/``get_command``, not ``.commands``: that holds only the loaded ones.
    if hasattr(command, "list_commands"):
        ctx = command.make_context(path[-1] if path else "corral", [], resilient_parsing=True)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if not sub.hidden:
                found += _walk(sub, (*path, name))
    return found


COMMANDS = _walk(typer.main.get_command(app), ())


def _flat(text: str) -> str:
    return " ".join(text.split())


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "corral" for p, _ in COMMANDS]
)
def test_help_fits_80_columns_in_one_plain_style_with_nothing_cut(
    path: tuple[str, ...], command: Any
) -> None:
    text = _help(path)
    lines = text.splitlines()
    assert lines[0].startswith("Usage: corral"), text
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, "\n".join(too_wide)
    assert not BOX & set(text), f"boxes in the help of {path}:\n{text}"
    assert "<bool>" not in text
    flat = _flat(text)
    for param in command.params:
        if param.help and not param.hidden:
            assert _flat(param.help) in flat, f"{param.name}'s help is cut:\n{text}"
    for name, sub in getattr(command, "commands", {}).items():
        first = _flat(inspect.cleandoc(sub.short_help or sub.help or "").split("\n\n")[0])
        assert f"{name} {first}" in flat, f"{name}'s summary is cut:\n{text}"


def test_every_group_lists_its_commands_in_full() -> None:
    plain = [" ".join(p) for p, cmd in COMMANDS if hasattr(cmd, "commands")
             and not isinstance(cmd, HelpGroup)]  # fmt: skip
    assert not plain, f"give these groups typer.Typer(cls=c.HelpGroup): {plain}"


def test_vm_create_help_shows_the_whole_disk_syntax() -> None:
    text = _help(("vm", "create"))
    assert "size=10G[,name=data][,bus=virtio]" in text
    for option in ("--disk SPEC", "--nic SPEC", "--memory SIZE", "--max-memory SIZE"):
        assert option in text  # not "<list[str]>", "<str>"
