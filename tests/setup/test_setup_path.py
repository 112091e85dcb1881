"""What `make run`/`make test` leave behind for a newcomer: `corral` on a login shell's PATH."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _login_shell(command: str) -> subprocess.CompletedProcess[str]:
    # A fresh login shell, with none of this test run's environment (no venv on PATH).
    env = {"HOME": os.environ.get("HOME", "/root"), "TERM": "dumb"}
    return subprocess.run(
        ["bash", "-lc", command], env=env, capture_output=True, text=True, timeout=60
    )


def test_corral_is_on_the_default_path() -> None:
    found = _login_shell("command -v corral")
    assert found.returncode == 0, "corral is not on a login shell's PATH after the set-up"
    resolved = Path(found.stdout.strip()).resolve()
    assert resolved == (REPO / ".venv" / "bin" / "corral").resolve()
    helped = _login_shell("corral --help")
    assert helped.returncode == 0, helped.stderr
    assert "host" in helped.stdout and "vm" in helped.stdout
