"""Every ``corral …`` command the README shows parses with today's CLI.

The README is what an administrator types first; a renamed option or a command that moved turns
their first hour into guesswork (``corral vm stop k1 --hard`` was shown and refused). Parsing
only: click's ``make_context`` checks commands, options, their values and required arguments
without running anything, so no server is needed.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main

from corral.cli.main import app

README = Path(__file__).resolve().parents[3] / "README.md"
_FENCE = re.compile(r"^```(\w*)\s*$")
_EXAMPLE_FILE = re.compile(r"^Invalid value for '[A-Z_]+': (file|path) '[^']+' does not exist\.$")


def _shell_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of every ``sh``/``bash``/``console`` fenced block."""
    blocks: list[tuple[int, str]] = []
    lang: str | None = None
    start = 0
    lines: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        fence = _FENCE.match(line.strip())
        if fence and lang is None:
            lang, start, lines = fence.group(1), number + 1, []
        elif line.strip() == "```" and lang is not None:
            if lang in {"sh", "bash", "console", "shell"}:
                blocks.append((start, "\n".join(lines)))
            lang = None
        elif lang is not None:
            lines.append(line)
    return blocks


def _corral_commands() -> list[tuple[str, list[str]]]:
    """(README line, argv after ``corral``) for every ``corral`` invocation in a shell block."""
    found: list[tuple[str, list[str]]] = []
    for start, block in _shell_blocks(README.read_text()):
        joined = block.replace("\\\n", " ")
        for offset, line in enumerate(joined.splitlines()):
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            command: list[str] = []
            for word in [*words, ";"]:
                if word in {";", "&&", "||", "|"} or word.endswith(";"):
                    if word.endswith(";") and word != ";":
                        command.append(word[:-1])
                    if command and command[0] == "corral":
                        found.append((f"README.md:{start + offset}: {line.strip()}", command[1:]))
                    command = []
                else:
                    command.append(word)
    return found


COMMANDS = _corral_commands()


def _parse(argv: list[str]) -> None:
    """Walk the groups down to the command and let click parse its arguments.

    Typer vendors its own click (``typer._click``), so groups are told by ``resolve_command``
    rather than ``isinstance(…, click.Group)``, and a group's context keeps the sub-command's
    name in ``_protected_args`` (click has no public name for it since 8.2).
    """
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("corral", list(argv))
    while hasattr(command, "resolve_command"):
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            return
        name, command, rest = command.resolve_command(ctx, rest)
        ctx = command.make_context(name, rest, parent=ctx)


def test_the_readme_shows_many_commands() -> None:
    # Guards the extraction itself: a broken parser would make the next test pass vacuously.
    assert len(COMMANDS) > 60
    assert any(argv[:2] == ["vm", "create"] for _, argv in COMMANDS)


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_readme_command_parses(where: str, argv: list[str]) -> None:
    if any(word in {"-h", "--help", "--version"} for word in argv):
        return  # eager options exit before the rest is parsed
    try:
        _parse(argv)
    except Exception as exc:  # typer's vendored ClickException, or click's
        if not hasattr(exc, "format_message"):
            raise
        if _EXAMPLE_FILE.search(exc.format_message()):
            return  # the README's example files are the reader's own
        pytest.fail(f"{where}\n  corral {shlex.join(argv)}\n  → {exc.format_message()}")


@pytest.mark.parametrize(
    "argv",
    [["vm", "stop", "k1", "--hard"], ["vm", "nosuch"], ["vm", "create"], ["host", "list", "x"]],
)
def test_a_wrong_command_is_caught(argv: list[str]) -> None:
    # The parse must be able to fail, or the test above proves nothing.
    with pytest.raises(Exception) as caught:
        _parse(argv)
    assert hasattr(caught.value, "format_message")
