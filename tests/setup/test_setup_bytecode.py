"""The set-up leaves bytecode for what `corral vm list` imports, valid for import as it stands.

Without it a process that may not write bytecode (PYTHONDONTWRITEBYTECODE, as in some shells
and CI) compiles every module `corral` imports on every run: three times the time here.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from importlib.util import MAGIC_NUMBER, cache_from_source
from pathlib import Path

#: Names the files of the modules ``corral vm list --help`` imports (no server needed).
_DRIVER = """
import json, sys
from corral.cli.main import app
try:
    app(args=["vm", "list", "--help"], prog_name="corral")
except SystemExit:
    pass
files = [getattr(m, "__file__", None) for m in list(sys.modules.values()) if m is not None]
print(json.dumps(sorted(f for f in files if f and f.endswith(".py"))))
"""


def _stale(source: Path) -> str | None:
    """Why the bytecode of ``source`` would not be used (None: it would)."""
    cached = Path(cache_from_source(str(source)))
    if not cached.exists():
        return "missing"
    header = cached.read_bytes()[:16]
    if header[:4] != MAGIC_NUMBER:
        return "another Python's"
    flags, mtime, size = struct.unpack("<III", header[4:16])
    stat = source.stat()
    if flags == 0 and (
        mtime != int(stat.st_mtime) & 0xFFFFFFFF or size != stat.st_size & 0xFFFFFFFF
    ):
        return "older than the source"
    return None


def test_every_module_corral_vm_list_imports_has_its_bytecode() -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    files = [Path(f) for f in json.loads(done.stdout.splitlines()[-1])]
    assert any(f.name == "vm.py" and f.parent.name == "cli" for f in files)
    stale = [f"{f}: {why}" for f in files if (why := _stale(f)) is not None]
    assert not stale, "run scripts/setup.sh:\n" + "\n".join(stale)
