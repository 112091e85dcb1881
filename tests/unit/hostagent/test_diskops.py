"""``disk.copy`` through the agent's own entry point (``python -m corral.hostagent``): a qcow2
image copied into an existing volume keeps every byte the guest would see; bad arguments are
the agent's sentences, and nothing is run for them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

MIB = 2**20


def _agent(op: str, args: dict[str, Any]) -> dict[str, Any]:
    request = json.dumps({"op": op, "args": args}).encode()
    done = subprocess.run([sys.executable, "-m", "corral.hostagent"], input=request,
                          capture_output=True, timeout=60, check=True)  # fmt: skip
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def _img(*argv: str) -> str:
    return subprocess.run(["qemu-img", *argv], capture_output=True, text=True, check=True).stdout


def test_a_qcow2_image_is_copied_into_the_existing_volume(tmp_path: Path) -> None:
    raw = tmp_path / "data.raw"
    raw.write_bytes(b"corral" * 1000 + bytes(4 * MIB - 6000))
    source, target = tmp_path / "source.qcow2", tmp_path / "target.qcow2"
    _img("convert", "-f", "raw", "-O", "qcow2", str(raw), str(source))
    _img("create", "-f", "qcow2", str(target), str(4 * MIB))
    answer = _agent("disk.copy", {"source": str(source), "target": str(target),
                                  "source_format": "qcow2"})  # fmt: skip
    assert answer["ok"] is True, answer
    assert "Images are identical" in _img("compare", "-f", "qcow2", "-F", "raw",
                                          str(target), str(raw))  # fmt: skip


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"source": "relative", "target": "/t", "source_format": "raw"}, "source must be"),
        ({"source": "/s", "target": "http://x/y", "source_format": "raw"}, "target must be"),
        ({"source": "/s/../etc", "target": "/t", "source_format": "raw"}, "must not contain"),
        ({"source": "/s", "target": "/t", "source_format": "vmdk"}, "source_format must be"),
    ],
)
def test_bad_arguments_are_refused(args: dict[str, Any], error: str) -> None:
    answer = _agent("disk.copy", args)
    assert answer["ok"] is False and error in answer["error"]


def test_a_failing_copy_says_which_and_why(tmp_path: Path) -> None:
    missing, target = tmp_path / "missing.qcow2", tmp_path / "t.qcow2"
    args = {"source": str(missing), "target": str(target), "source_format": "qcow2"}
    answer = _agent("disk.copy", args)
    assert answer["ok"] is False
    assert answer["error"].startswith(
        f"copying {tmp_path}/missing.qcow2 to {tmp_path}/t.qcow2 failed: "
    )
