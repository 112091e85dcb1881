"""The HA test bed: the session's three hosts, a shared-dir domain every host reaches (one per
module), and an ``ipmi_sim`` BMC for h2. The local host stays in maintenance meanwhile, so
restarts land on h1/h2/h3 as on a cluster of three."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import httpx
import pytest

from corral.testbed.bmc import BmcSimulator, free_udp_port, power_on
from corral.testbed.corral_server import CorralServer
from corral.testbed.multihost import MultiHostTestbed
from tests.integration.ha._support import BMC_PASSWORD, BMC_USER, DOMAIN


@pytest.fixture(scope="module")
def api(multihost_corral: CorralServer) -> Iterator[httpx.Client]:
    with multihost_corral.client() as client:
        yield client


@pytest.fixture(scope="module")
def cluster(
    api: httpx.Client, testbed: MultiHostTestbed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("ha-shared")
    made = api.post(
        "/storage-domains", json={"kind": "shared-dir", "name": DOMAIN, "path": str(path)}
    )
    assert made.status_code == 201, made.text
    assert api.put("/hosts/local/maintenance", json={"enabled": True}).status_code == 200
    try:
        yield path
    finally:
        api.put("/hosts/local/maintenance", json={"enabled": False})
        for name in ("h2", "h3"):
            power_on(testbed, testbed.host(name))
            api.put(f"/hosts/{name}/power", json={"driver": None})
        api.delete(f"/storage-domains/{DOMAIN}")


@pytest.fixture(scope="module")
def bmc(
    multihost_corral: CorralServer,
    testbed: MultiHostTestbed,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[BmcSimulator]:
    """h2's BMC, configured in Corral through the real CLI."""
    base = tmp_path_factory.mktemp("bmc-ha-h2")
    sim = BmcSimulator(testbed, "h2", base, address="127.0.0.1", port=free_udp_port(),
                       user=BMC_USER, password=BMC_PASSWORD)  # fmt: skip
    with sim:
        password = base / "bmc-password"
        password.write_text(BMC_PASSWORD + "\n")
        done = multihost_corral.cli(
            "host", "power", "h2", "--driver", "ipmi", "--address", sim.address,
            "--port", str(sim.port), "--user", BMC_USER, "--password-file", str(password),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        yield sim


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed HA test shows what the manager logged meanwhile (its warnings say each host's
    HA state changes and why): CI keeps no server log."""
    report = yield
    server = getattr(item, "funcargs", {}).get("multihost_corral")
    start = item.stash.get(_LOG_START, None)
    if report.failed and isinstance(server, CorralServer) and start is not None:
        logged = server.log_path.read_bytes()[start:].decode(errors="replace")
        lines = [line for line in logged.splitlines() if "WARNING" in line or "ERROR" in line]
        report.sections.append(("corral serve, warnings meanwhile", "\n".join(lines[-80:])))
        try:
            with server.client() as client:
                status = client.get("/ha").text
        except (httpx.HTTPError, OSError) as exc:  # a diagnostic: never hide the failure
            status = f"(could not be read: {exc})"
        report.sections.append(("HA status at the failure", status))
    return report


_LOG_START = pytest.StashKey[int]()


@pytest.fixture(autouse=True)
def _server_log_start(request: pytest.FixtureRequest, multihost_corral: CorralServer) -> None:
    request.node.stash[_LOG_START] = multihost_corral.log_path.stat().st_size
