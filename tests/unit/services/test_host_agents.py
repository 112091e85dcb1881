"""The manager side of the host agent: which way a host's agent is reached, and how its
answers become results or Corral errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from corral.errors import Conflict, HostError
from corral.hostsetup.agent import agent_bundle
from corral.model.host import SshAccess
from corral.services.host_agents import AgentAccess, HostAgents, _result, access_for, clean


def test_enrolled_hosts_are_reached_over_their_recorded_ssh_access() -> None:
    ssh = SshAccess(destination="root@198.51.100.7", port=2222)
    access = access_for("h1", "qemu+tls://198.51.100.7/system", ssh)
    assert access == AgentAccess("h1", ssh=ssh)


def test_the_managers_own_host_runs_the_agent_locally() -> None:
    assert access_for("local", "qemu:///system", None).local
    assert access_for("local", "qemu+unix:///system?socket=/tmp/x", None).local


def test_a_host_without_ssh_access_gets_a_clear_error() -> None:
    with pytest.raises(Conflict, match=r"host h2 has no SSH access recorded.*corral host enroll"):
        access_for("h2", "qemu+tls://h2.example/system", None)
    with pytest.raises(Conflict, match="test driver: it has no host agent"):
        access_for("t", "test:///default", None)


def test_a_local_call_answers_with_this_version(tmp_path: Path) -> None:
    agents = HostAgents(db=None, known_hosts=None, local_state_dir=tmp_path)  # type: ignore[arg-type]
    local = AgentAccess("local", local=True)
    result = asyncio.run(agents.call_with(local, "version", {}, timeout_s=30))
    assert result["version"] == agent_bundle().version
    # The network record of the manager's own host is this Corral's, not the machine's /run.
    state = asyncio.run(agents.call_with(local, "net.state", {}, timeout_s=30))
    assert state["bridges"] == [] and state["pending"] is None
    assert (tmp_path / "lock").exists()


def test_an_agent_error_names_host_and_op_and_is_cleaned() -> None:
    version = agent_bundle().version
    raw = json.dumps({"agent": version, "ok": False, "error": "bridge busy\x1b[31m\nnow"})
    with pytest.raises(HostError) as caught:
        _result("host agent on h1: net.apply", raw.encode())
    assert caught.value.message == "host agent on h1: net.apply failed: bridge busy [31m now"
    assert clean("x" * 1000).endswith("…") and len(clean("x" * 1000)) == 600


def test_another_versions_answer_or_garbage_is_refused() -> None:
    other = json.dumps({"agent": "0" * 16, "ok": True, "result": {}}).encode()
    with pytest.raises(HostError, match="another version"):
        _result("host agent on h1: version", other)
    with pytest.raises(HostError, match="not JSON"):
        _result("host agent on h1: version", b"\xff")
