"""``corral testbed simulate``: simulated hosts on libvirt's test driver (a node description
each, its own host UUID, running domains Corral adopts), against a real app with
``allow_test_hosts``. The short version of bench/inventory.py: ``vm create`` without a host at
two inventory sizes on the same number of hosts, the ratio printed (nothing timed asserted)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from typer.testing import CliRunner

from corral import store
from corral.api.app import create_app
from corral.cli.main import app
from corral.config import Settings
from corral.model.auth import Role
from corral.services.runtime import Services
from corral.testbed.simulated_hosts import write_hosts
from tests.unit.cli._real import ADMIN, PASSWORD, serve

HOSTS = 20


@contextmanager
def _simulating(data_dir: Path, *, allow: bool = True) -> Iterator[tuple[Services, dict[str, str]]]:
    """A real app whose own host is a simulated one, and the CLI's environment for it."""
    [local] = write_hosts(data_dir / "local", 1, prefix="local")
    settings = Settings(
        data_dir=data_dir,
        local_host_name=local.name,
        local_host_uri=local.uri,
        pool_dir=str(data_dir / "pool"),
        # Hosts added through the API are reconciled (their domains adopted) by the next pass.
        reconcile_interval_s=2,
        allow_test_hosts=allow,
    )
    services = Services(settings)
    services.auth.create_user_sync(ADMIN, PASSWORD, Role.ADMIN)
    with serve(create_app(settings, services)) as url:
        login = httpx.post(f"{url}/api/v1/auth/login", timeout=30,
                           json={"username": ADMIN, "password": PASSWORD})  # fmt: skip
        env = {
            "CORRAL_URL": url,
            "CORRAL_TOKEN": login.json()["secret"],
            "CORRAL_DATA_DIR": str(data_dir),
            "CORRAL_CONFIG_DIR": str(data_dir / "cli"),
        }
        yield services, env


def _until_vms(services: Services, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(services.db.sync(store.vm_placements)) < count:
        assert time.monotonic() < deadline, "the simulated hosts' domains were not adopted"
        time.sleep(0.05)


def _create_ms(env: dict[str, str], count: int) -> list[float]:
    headers = {"Authorization": f"Bearer {env['CORRAL_TOKEN']}"}
    times = []
    with httpx.Client(base_url=env["CORRAL_URL"] + "/api/v1", headers=headers, timeout=60) as c:
        for i in range(count):
            spec = {"name": f"new{i}", "memory_mib": 256, "disks": [{"size_gib": 1}]}
            started = time.perf_counter()
            answer = c.post("/vms", json=spec)
            times.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 201, answer.text
            assert answer.json()["host"].startswith("sim-")
    return times


def _simulate(services: Services, env: dict[str, str], vms: int) -> float:
    """Simulated hosts with ``vms`` VMs, adopted; the p50 of five creates without a host."""
    answer = CliRunner().invoke(
        app, ["testbed", "simulate", "--hosts", str(HOSTS), "--vms", str(vms)], env=env
    )
    assert answer.exit_code == 0, answer.output
    assert f"{HOSTS} simulated hosts added" in answer.output
    _until_vms(services, vms)
    return statistics.median(_create_ms(env, 5))


def test_simulated_hosts_and_create_at_two_sizes(tmp_path: Path) -> None:
    with _simulating(tmp_path / "small") as (services, env):
        small = _simulate(services, env, 20)
    with _simulating(tmp_path / "large") as (services, env):
        large = _simulate(services, env, 300)
        headers = {"Authorization": f"Bearer {env['CORRAL_TOKEN']}"}
        url = env["CORRAL_URL"] + "/api/v1/hosts"
        hosts = httpx.get(url, params={"limit": 1000}, headers=headers, timeout=30).json()
        listed = hosts["items"]
        uuids = {h["capabilities"]["host_uuid"] for h in listed if h["name"].startswith("sim-")}
        assert len(uuids) == HOSTS and None not in uuids  # a host UUID each
        assert all(services.view.listed(f"sim-{i:04d}") for i in range(1, HOSTS + 1))
    print(f"\ncreate p50 without a host, {HOSTS} simulated hosts: {small:.0f} ms at 20 VMs, "
          f"{large:.0f} ms at 300 VMs (ratio {large / small:.2f})")  # fmt: skip


def test_simulated_hosts_need_allow_test_hosts(tmp_path: Path) -> None:
    with _simulating(tmp_path, allow=False) as (services, env):
        answer = CliRunner().invoke(app, ["testbed", "simulate", "--hosts", "2"], env=env)
        assert answer.exit_code == 1
        assert "allow_test_hosts" in answer.output
        assert [h.name for h in services.hosts.all()] == ["local-0001"]
