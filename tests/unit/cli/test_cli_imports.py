"""What a ``corral`` process imports: only what the command it runs needs.

``corral vm list`` is the command people run most, and an import costs on every run (over a
second when every command module was imported up front; the time is in bench/cli.py). These
tests run the CLI in a process of its own and look at ``sys.modules`` when it ends: no timing.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from corral.cli.context import HelpGroup
from corral.cli.main import app
from corral.model.vm import VmState
from tests.unit.cli.canned_api import vm_info
from tests.unit.cli.conftest import CannedApi

#: Never imported by ``corral vm list``: the API's models (and pydantic itself), the server's
#: stack, the console's (websockets, numpy, Pillow), httpx (the CLI speaks HTTP through
#: ``http.client``, ``transport.py``), Rich's progress bars, syntax highlighting and emoji
#: table, and the modules of the other commands.
NOT_FOR_VM_LIST = (
    "pydantic",
    "pydantic_core",
    "corral.model",
    "sqlalchemy",
    "alembic",
    "libvirt",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "cryptography",
    "numpy",
    "PIL",
    "websockets",
    "pygments",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "rich._emoji_codes",
    "rich.progress",
    "rich.syntax",
    "corral.api",
    "corral.services",
    "corral.store",
    "corral.virt",
    "corral.rfb",
    "corral.pki",
    "corral.cli.output",
    "corral.cli.units",
    "corral.cli.task",
    "corral.cli.vm_ops",
    "corral.cli.vm_create",
    "corral.cli.console",
    "corral.cli.host",
)

#: Runs ``corral ARGS`` (JSON in $ARGS) in this process, then writes the names of the
#: modules it imported to $MODULES_OUT.
_DRIVER = """
import json, os, sys
from corral.cli.main import app
try:
    app(args=json.loads(os.environ["ARGS"]), prog_name="corral")
except SystemExit:
    pass
names = [name for name, module in sys.modules.items() if module is not None]
with open(os.environ["MODULES_OUT"], "w") as out:
    json.dump(names, out)
"""


def _imported(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[set[str], str]:
    """(modules imported, stdout) of a fresh ``corral ARGS`` process."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER],
        env={**os.environ, **env, "ARGS": json.dumps(args), "MODULES_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and out.exists(), done.stdout + done.stderr
    return set(json.loads(out.read_text())), done.stdout


def _offending(modules: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == b or m.startswith(b + ".") for b in banned))


def test_vm_list_imports_no_models_server_or_other_commands(api: CannedApi, tmp_path: Path) -> None:
    api.state.vms = {"web1": vm_info("web1"), "db1": vm_info("db1", VmState.SHUTOFF, "h2")}
    for args in (("vm", "list", "--help"), ("vm", "list"), ("vm", "list", "--host", "h2")):
        modules, stdout = _imported(tmp_path, {**api.env(), "COLUMNS": "200"}, *args)
        assert not _offending(modules, NOT_FOR_VM_LIST), args
        assert "corral.cli.vm" in modules and "corral.cli.transport" in modules
        if args[-1] != "--help":
            assert "db1" in stdout and "shutoff" in stdout


def test_help_and_completion_import_no_command_module(api: CannedApi, tmp_path: Path) -> None:
    completing = {"COMP_WORDS": "corral ", "COMP_CWORD": "1", "_CORRAL_COMPLETE": "complete_bash"}
    for env, args in (({}, ("--help",)), (completing, ())):
        modules, stdout = _imported(tmp_path, {**api.env(), **env}, *args)
        commands = sorted(m for m in modules if m.startswith("corral.cli."))
        assert commands == [
            "corral.cli.client",
            "corral.cli.context",
            "corral.cli.credentials",
            "corral.cli.lazy",
            "corral.cli.main",
            "corral.cli.params",
            "corral.cli.transport",
        ], args
        assert "storage-domain" in stdout and "completion" in stdout


def _lazy_entries(group: Any, path: tuple[str, ...]) -> list[tuple[str, str, Any]]:
    """(command path, summary in the table, loaded command) of every lazy command below."""
    found = []
    ctx = group.make_context(" ".join(path) or "corral", [], resilient_parsing=True)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        entry = group.lazy.get(name) if isinstance(group, HelpGroup) else None
        if entry is not None:
            found.append((" ".join((*path, name)), entry.summary, command))
        if hasattr(command, "list_commands"):
            found += _lazy_entries(command, (*path, name))
    return found


def test_each_lazy_summary_is_its_commands_first_paragraph() -> None:
    entries = _lazy_entries(typer.main.get_command(app), ())
    assert len(entries) > 30
    for path, summary, command in entries:
        first = inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]
        assert summary == " ".join(first.split()), path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("vm", "shutdown", "web1", "--timeout", "soon"), "Input should be a valid number"),
        (("vm", "shutdown", "web1", "--timeout", "0"), "greater than or equal to 0.1"),
        (("completion", "tcsh"), "'tcsh' is not one of 'bash', 'zsh', 'fish'"),
    ],
)
def test_typed_values_are_still_converted_and_checked(args: tuple[str, ...], message: str) -> None:
    """Typer converts with pydantic only where a value needs it (``params.py``): a float, a
    range and a choice are refused as before."""
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()), result.output


@pytest.mark.parametrize(
    ("args", "suggested"),
    [(("vmm",), "'vm'"), (("vm", "lst"), "'list'"), (("host", "nic"), "'nics'")],
)
def test_a_mistyped_command_suggests_one_not_loaded_yet(
    args: tuple[str, ...], suggested: str
) -> None:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert f"Did you mean {suggested}" in result.output, result.output
