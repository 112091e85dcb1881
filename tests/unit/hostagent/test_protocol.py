"""The agent's envelope and version: the shipped zip runs under the host's python3 and
answers with the version the manager computed from the same sources."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from corral.hostagent.protocol import agent_version, package_sources, source_digest
from corral.hostsetup.agent import agent_bundle, bundle_from, install_script, run_command


def _ask(argv: list[str], request: bytes) -> dict[str, object]:
    done = subprocess.run(argv, input=request, capture_output=True, timeout=30, check=True)
    answer = json.loads(done.stdout)
    assert isinstance(answer, dict)
    return answer


def test_the_version_is_a_digest_of_the_sources() -> None:
    sources = package_sources()
    assert {"protocol.py", "main.py", "ops.py", "__init__.py"} <= set(sources)
    assert agent_version() == source_digest(sources) == agent_bundle().version
    changed = {**sources, "ops.py": sources["ops.py"] + b"#"}
    assert source_digest(changed) != agent_version()


def test_the_bundle_is_reproducible() -> None:
    assert bundle_from(package_sources()).data == agent_bundle().data


def test_the_zip_runs_under_the_systems_python3(tmp_path: Path) -> None:
    bundle = agent_bundle()
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(bundle.data)
    answer = _ask(["/usr/bin/python3", "-I", str(pyz)], b'{"op": "version", "args": {}}')
    assert answer["ok"] is True and answer["agent"] == bundle.version
    result = answer["result"]
    assert isinstance(result, dict) and result["version"] == bundle.version


def test_bad_requests_get_an_error_reply() -> None:
    argv = [sys.executable, "-I", "-m", "corral.hostagent"]
    for request, said in (
        (b"not json", "the request is not JSON"),
        (b"[1]", 'the request must be {"op": NAME'),
        (b'{"op": "version", "args": []}', "args must be a JSON object"),
        (b'{"op": "nosuch"}', "unknown operation 'nosuch'"),
    ):
        answer = _ask(argv, request)
        assert answer["ok"] is False
        assert str(answer["error"]).startswith(said), answer


def test_the_commands_carry_no_request_and_check_the_file() -> None:
    bundle = agent_bundle()
    command = run_command(bundle)
    assert bundle.sha256 in command and bundle.path in command
    assert "exit 97" in command
    script = install_script(bundle)
    assert f"head -c {len(bundle.data)}" in script and bundle.sha256 in script
