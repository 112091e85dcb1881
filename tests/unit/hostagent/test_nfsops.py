"""The host agent's nfs.* ops refuse bad arguments in their own words before touching the
network, and say plainly when a server does not answer (the test bed's servers are in
tests/integration/storage)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import corral
from corral.hostagent import nfsops, ops
from corral.hostagent.protocol import AgentError

PLACE = {"server": "198.18.0.200", "export": "/export"}


@pytest.mark.parametrize(
    ("op", "args", "message"),
    [
        ("nfs.check", {"server": "a b", "export": "/x"}, "server must be"),
        ("nfs.check", {"server": "-x", "export": "/x"}, "server must be"),
        ("nfs.check", {"server": "nas", "export": "x"}, "export must be an absolute path"),
        ("nfs.check", {"server": "nas", "export": "/a/../b"}, "export must be an absolute path"),
        ("nfs.create", {**PLACE, "name": "../x", "size_bytes": 1}, "name must be a plain"),
        ("nfs.create", {**PLACE, "name": ".hidden", "size_bytes": 1}, "name must be a plain"),
        ("nfs.create", {**PLACE, "name": "a/b", "size_bytes": 1}, "name must be a plain"),
        ("nfs.create", {**PLACE, "name": "v", "size_bytes": 0}, "size_bytes must be"),
        ("nfs.create", {**PLACE, "name": "v", "size_bytes": True}, "size_bytes must be"),
        ("nfs.clone", {**PLACE, "name": "v", "base": "/etc/passwd"}, "base must be a plain"),
        ("nfs.delete", {**PLACE}, "name must be a plain"),
    ],
)
def test_bad_arguments_are_refused_in_words(op: str, args: dict[str, Any], message: str) -> None:
    with pytest.raises(AgentError, match=message):
        ops.run(op, args)


def test_a_server_refusing_connections_is_named_with_the_reason() -> None:
    # Nothing listens on port 111 in the machine's own namespace (tests/setup checks it).
    with pytest.raises(AgentError, match=r"cannot reach NFS server 127\.0\.0\.1 .*refused"):
        ops.run("nfs.check", {"server": "127.0.0.1", "export": "/export"})


def test_urls_name_the_file_in_the_export() -> None:
    assert nfsops.url("nas", "/srv/vms/", "a.qcow2") == "nfs://nas/srv/vms/a.qcow2"
    assert nfsops.url("[fd00::1]", "/", "a.qcow2") == "nfs://[fd00::1]/a.qcow2"


def test_every_nfs_op_is_in_the_agents_table() -> None:
    assert {op for op in ops.OPS if op.startswith("nfs.")} == {
        "nfs.check", "nfs.list", "nfs.create", "nfs.clone", "nfs.resize", "nfs.delete",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({**PLACE, "name": ".corral-upload-x", "size_bytes": 1}, "name must be a plain"),
        ({**PLACE, "name": "a/b", "size_bytes": 1}, "name must be a plain"),
        ({**PLACE, "name": "_iso.x", "size_bytes": 0}, "size_bytes must be"),
        ({"server": "a b", "export": "/x", "name": "_iso.x", "size_bytes": 1}, "server must be"),
    ],
)
def test_nfs_write_refuses_bad_arguments_before_reading_its_body(
    args: dict[str, Any], message: str
) -> None:
    body = io.BytesIO(b"x")
    with pytest.raises(AgentError, match=message):
        ops.run("nfs.write", args, body)
    assert body.tell() == 0


def test_nfs_write_needs_a_body() -> None:
    with pytest.raises(AgentError, match="reads its data after the request line"):
        ops.run("nfs.write", {**PLACE, "name": "_iso.x", "size_bytes": 1})


def test_a_body_after_the_request_line_is_left_to_the_op() -> None:
    """The request is the first line of stdin; what follows is an op's body (nfs.write's
    image bytes), never part of the JSON."""
    request = json.dumps({"op": "version", "args": {}}).encode() + b"\n" + b"\x00" * 4096
    done = subprocess.run(
        [sys.executable, "-I", "-m", "corral.hostagent"], input=request, capture_output=True,
        check=True, cwd=Path(corral.__file__).parents[1],
    )  # fmt: skip
    reply = json.loads(done.stdout)
    assert reply["ok"] is True and "nfs.write" in reply["result"]["ops"]
