"""Shell completion: the script ``corral completion SHELL`` prints, loaded in that real shell,
completes ``corral vm l`` to ``list`` (and ``log``) by calling this installation's ``corral``.

zsh's completion functions only run inside its line editor, so there ``compdef`` and
``_arguments`` (what the script hands its answer to) are stand-ins that print; bash and fish
complete as they do at a prompt (``complete -C`` is fish's own way to ask).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent

SCRIPTS = {
    "bash": (
        ["bash", "--norc", "--noprofile", "-c"],
        "source <(corral completion bash)\n"
        "COMP_WORDS=({words}); COMP_CWORD={index}\n"
        "_corral_completion corral\n"
        'printf "%s\\n" "${{COMPREPLY[@]}}"\n',
    ),
    "zsh": (
        ["zsh", "-f", "-c"],
        "compdef() {{ :; }}\n"
        '_arguments() {{ print -r -- "$@"; }}\n'
        "source <(corral completion zsh)\n"
        "words=({words}); CURRENT={position}\n"
        "_corral_completion\n",
    ),
    "fish": (
        ["fish", "--no-config", "-c"],
        'corral completion fish | source; complete -C "{words}"',
    ),
}


def _complete(shell: str, *words: str) -> str:
    """What ``shell`` offers after ``words`` (the last one being typed)."""
    argv, script = SCRIPTS[shell]
    text = script.format(words=" ".join(words), index=len(words) - 1, position=len(words))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "200"}
    done = subprocess.run(
        [*argv, text], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("shell", sorted(SCRIPTS))
def test_vm_l_completes_to_list_and_log(shell: str) -> None:
    offered = _complete(shell, "corral", "vm", "l")
    assert "list" in offered and "log" in offered
    assert "show" not in offered and "create" not in offered
    if shell != "bash":  # zsh and fish show each command's summary beside it
        assert "List VMs with their state, size and uptime." in offered


def test_bash_completes_group_names_and_options() -> None:
    groups = _complete("bash", "corral", "stor").split()
    assert groups == ["storage-domain"]
    assert _complete("bash", "corral", "vm", "list", "--h").split() == ["--host", "--help"]
