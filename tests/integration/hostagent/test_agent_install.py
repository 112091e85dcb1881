"""The host agent on enrolled test-bed hosts: installed at enrollment, answering ``version``
through the API and the CLI, reinstalled when missing or replaced by another version; on the
manager's own host it runs as a subprocess."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from corral.hostagent.protocol import package_sources
from corral.hostsetup.agent import agent_bundle, bundle_from
from corral.testbed.corral_server import CorralServer
from corral.testbed.multihost import MultiHostTestbed, TestbedHost

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(multihost_corral: CorralServer) -> Iterator[httpx.Client]:
    with multihost_corral.client() as client:
        yield client


def _installed(host: TestbedHost) -> dict[str, bytes]:
    """The agent files in the host's /var/lib/corral-agent."""
    return {p.name: p.read_bytes() for p in host.agent_home.glob("agent-*.pyz")}


def _current() -> dict[str, bytes]:
    bundle = agent_bundle()
    return {f"agent-{bundle.version}.pyz": bundle.data}


def test_enrollment_installed_the_agent(
    multihost_corral: CorralServer, testbed: MultiHostTestbed
) -> None:
    for host in testbed.hosts:
        assert _installed(host) == _current(), host.name


def test_the_agent_answers_version_through_the_api_and_the_cli(
    api: httpx.Client, multihost_corral: CorralServer
) -> None:
    answer = api.post("/hosts/h1/agent")
    assert answer.status_code == 200, answer.text
    info = answer.json()
    assert info["host"] == "h1"
    assert info["version"] == agent_bundle().version
    assert info["python"].startswith("3.")
    assert "version" in info["ops"]
    shown = multihost_corral.cli("host", "agent", "h1")
    assert shown.returncode == 0, shown.stderr
    assert f"host h1: agent {agent_bundle().version}" in shown.stdout
    as_json = json.loads(multihost_corral.cli("--json", "host", "agent", "h1").stdout)
    assert as_json["version"] == agent_bundle().version


def test_a_stale_agent_is_replaced_and_old_versions_removed(
    api: httpx.Client, testbed: MultiHostTestbed
) -> None:
    """h2's agent file is overwritten with another version's bytes (an older Corral's agent),
    and that older version's own file lies beside it: the next call reinstalls before running
    anything, and removes the old file."""
    sources = package_sources()
    older = bundle_from({**sources, "protocol.py": sources["protocol.py"] + b"\n# older\n"})
    assert older.version != agent_bundle().version
    home = testbed.host("h2").agent_home
    (home / f"agent-{agent_bundle().version}.pyz").write_bytes(older.data)
    (home / f"agent-{older.version}.pyz").write_bytes(older.data)
    answer = api.post("/hosts/h2/agent")
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == agent_bundle().version
    assert _installed(testbed.host("h2")) == _current()


def test_a_missing_agent_is_installed(api: httpx.Client, testbed: MultiHostTestbed) -> None:
    for item in testbed.host("h3").agent_home.iterdir():  # the directory is a mount point
        item.unlink()
    answer = api.post("/hosts/h3/agent")
    assert answer.status_code == 200, answer.text
    assert _installed(testbed.host("h3")) == _current()


def test_the_local_host_runs_the_agent_as_a_subprocess(api: httpx.Client) -> None:
    answer = api.post("/hosts/local/agent")
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == agent_bundle().version


def test_an_unknown_host_is_404(api: httpx.Client) -> None:
    answer = api.post("/hosts/nosuch/agent")
    assert answer.status_code == 404, answer.text
