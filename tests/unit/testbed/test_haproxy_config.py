"""The README's HAProxy configuration is the one the failover test runs, and HAProxy accepts it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from corral.testbed.haproxy import haproxy_config

README = Path(__file__).resolve().parents[3] / "README.md"
SERVERS = [("a", "192.0.2.11:8080"), ("b", "192.0.2.12:8080"), ("c", "192.0.2.13:8080")]


def _readme_block() -> str:
    section = README.read_text().split("### Behind a load balancer (HAProxy)", 1)[1]
    match = re.search(r"^```\n(global\n.*?)^```", section, re.S | re.M)
    assert match, "the HAProxy block is missing from the README"
    return match.group(1)


def test_the_readme_shows_the_configuration_the_tests_run() -> None:
    assert _readme_block() == haproxy_config("192.0.2.10:443", SERVERS)


def test_haproxy_accepts_it(tmp_path: Path) -> None:
    # Without TLS (the README's certificate files are not here), as the failover test runs it.
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config("127.0.0.1:8443", SERVERS, tls=False))
    checked = subprocess.run(
        ["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
