"""``corral testbed up --lan`` and ``down`` as a user runs them (root, no Corral to enroll into):
each host gets its LAN NIC under its own name, and ``down`` leaves no namespace behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from corral.testbed.multihost import allocate_slot

pytestmark = pytest.mark.integration


def _corral(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORRAL_CONFIG_DIR": str(config), "COLUMNS": "200"}
    env.pop("CORRAL_URL", None)
    env.pop("CORRAL_TOKEN", None)
    argv = [sys.executable, "-m", "corral.cli.main", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def _netns() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    return {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}


def test_testbed_up_with_a_lan_and_down(tmp_path: Path) -> None:
    # The CLI takes slots 0-99 (tests otherwise use 100-199): take one of the last ten.
    slot, lock = allocate_slot(90, 99)
    where = ["--dir", str(tmp_path / "bed"), "--slot", str(slot)]
    try:
        up = _corral("testbed", "up", "--hosts", "2", "--no-enroll", "--lan", *where,
                     config=tmp_path / "cli")  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"h1 198.18.{slot}.1 (LAN NIC ens4)" in up.stdout
        assert f"h2 198.18.{slot}.2 (LAN NIC enp2s0)" in up.stdout
        for netns, nic in ((f"crl{slot}h1", "ens4"), (f"crl{slot}h2", "enp2s0")):
            shown = subprocess.run(["ip", "-n", netns, "link", "show", nic],
                                   capture_output=True, text=True, timeout=10)  # fmt: skip
            assert shown.returncode == 0 and "state UP" in shown.stdout, shown.stderr
        assert f"crl{slot}lan" in _netns()
    finally:
        down = _corral("testbed", "down", *where, config=tmp_path / "cli")
        lock.close()
    assert down.returncode == 0, down.stdout + down.stderr
    assert not {n for n in _netns() if n.startswith(f"crl{slot}")}
