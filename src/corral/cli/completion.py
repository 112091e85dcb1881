"""``corral completion bash|zsh|fish``: the shell completion script, to source or install.

The script only calls ``corral`` back with the words typed so far (``_CORRAL_COMPLETE``, Typer's
protocol); ``corral`` answers from its command tables without importing the command modules
(``lazy.py``), so a TAB costs about what ``corral --help`` does.
"""

from __future__ import annotations

from enum import StrEnum

import typer
from typer._completion_shared import get_completion_script

#: The environment variable that makes ``corral`` complete instead of run.
COMPLETE_VAR = "_CORRAL_COMPLETE"


class Shell(StrEnum):
    BASH = "bash"
    ZSH = "zsh"
    FISH = "fish"


def completion(
    shell: Shell = typer.Argument(..., metavar="SHELL", help="The shell the script is for."),
) -> None:
    """Print the shell completion script for bash, zsh or fish (install it as the README says:
    e.g. `source <(corral completion bash)` in ~/.bashrc)."""
    script = get_completion_script(prog_name="corral", complete_var=COMPLETE_VAR, shell=shell)
    typer.echo(script)
