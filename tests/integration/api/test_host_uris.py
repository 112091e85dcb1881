"""Host URIs against a real ``corral serve`` (real libvirt client, real libvirtd): each form that
would run a program, reach another socket or read a file is refused with 422 before libvirt is
asked; the program never runs, and the file's content is in no answer, server log line or audit
entry. (tests/unit/api/test_host_uris.py covers every form and the settings in-process.)"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from corral.testbed.corral_server import CorralServer


@pytest.fixture
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


def test_refused_host_uris_run_nothing_and_quote_nothing(
    corral: CorralServer, client: httpx.Client, tmp_path: Path
) -> None:
    secret = f"canary-{secrets.token_hex(8)}"
    canary = tmp_path / "shadow"
    canary.write_text(f"{secret}:$6$x$y:19000:0:99999:7:::\n")
    canary.chmod(0o600)
    marker = tmp_path / "ran"
    script = tmp_path / "x.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    forms = {
        "ext": f"qemu+ext:///system?command={script}",
        "socket": "qemu+unix:///system?socket=/run/libvirt/libvirt-sock",
        "command": f"qemu+ssh://root@127.0.0.1/system?command={script}",
        "netcat": f"qemu+ssh://root@127.0.0.1/system?netcat={script}",
        "file": f"test://{canary}",
        "default": "test:///default",  # allow_test_hosts is off in a real server
    }
    for form, uri in forms.items():
        answer = client.post("/hosts", json={"name": f"uri-{form}", "uri": uri})
        assert answer.status_code == 422, (form, answer.text)
        assert secret not in answer.text
        assert client.get(f"/hosts/uri-{form}").status_code == 404
    assert not marker.exists(), "a refused URI ran its program"
    audit = client.get("/audit", params={"action": "host.add", "limit": 50})
    assert audit.status_code == 200
    outcomes = [e["outcome"] for e in audit.json()["items"][: len(forms)]]  # newest first
    assert all(o.startswith("error: uri: ") for o in outcomes), outcomes
    assert secret not in audit.text
    assert secret not in corral.log_path.read_text(errors="replace")
