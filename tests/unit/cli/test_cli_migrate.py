"""``corral vm migrate``, ``corral host evacuate`` and ``corral cluster``: what they send, what
they print. Cluster settings run against the real app; migrations and evacuations stay canned
(checked against /openapi.json): they need a second host."""

from __future__ import annotations

import json

from corral.model.vm import VmState
from tests.unit.cli.canned_api import vm_info
from tests.unit.cli.conftest import CannedApi, RealApi, Run

MIGRATED = {
    "state": "succeeded",
    "progress": 1,
    "phase": "VM web1 runs on h2 (1.2 s, downtime 80 ms)",
    "result": {
        "vm": "web1",
        "source": "h1",
        "destination": "h2",
        "transport": "tls",
        "total_time_ms": 1234,
        "downtime_ms": 80,
    },
}


def test_migrate_sends_the_defaults_and_reports_time_and_downtime(run: Run, api: CannedApi) -> None:
    api.state.vms["web1"] = vm_info("web1", VmState.RUNNING, host="h1")
    api.state.task_plans["vm.migrate"] = [
        {
            "state": "running",
            "phase": "h1 → h2 over tls: pass 2, dirtied 3.0 MiB/s, sent 150.0 MiB/s",
            "progress": 0.6,
            "bytes_done": 300 * 2**20,
            "bytes_total": 400 * 2**20,
        },
        MIGRATED,
    ]
    result = run("vm", "migrate", "web1", "--to", "h2")
    assert result.exit_code == 0, result.output
    [(_method, _path, body, _headers)] = api.requests_to("POST", "/vms/web1/migrate")
    assert json.loads(str(body)) == {
        "to": "h2",
        "transport": "tls",
        "max_downtime_ms": 300,
        "auto_converge": True,
        "xbzrle": False,
        "postcopy": False,
        "storage": "auto",
    }
    assert "migrated VM web1 to h2 over tls in 1.2 s (downtime 80 ms)" in result.stdout
    # The bar (on a terminal it also shows each pass, dirty rate and expected downtime).
    assert "VM web1 runs on h2 (1.2 s, downtime 80 ms)" in result.stderr
    assert "400.0/400.0 MiB" in result.stderr
    (bar,) = [line for line in result.stderr.splitlines() if "VM web1 runs on h2" in line]
    assert bar.startswith("✓ "), bar


def test_migrate_options(run: Run, api: CannedApi) -> None:
    api.state.vms["web1"] = vm_info("web1", VmState.RUNNING, host="h1")
    result = run(
        "vm", "migrate", "web1", "--to", "h3", "--transport", "ssh", "--max-downtime", "100",
        "--bandwidth", "200", "--no-auto-converge", "--copy-storage", "--no-wait",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().startswith("task-")
    [(_m, _p, body, _h)] = api.requests_to("POST", "/vms/web1/migrate")
    assert json.loads(str(body)) == {
        "to": "h3",
        "transport": "ssh",
        "max_downtime_ms": 100,
        "bandwidth_mib_s": 200,
        "auto_converge": False,
        "xbzrle": False,
        "postcopy": False,
        "storage": "copy",
    }


def test_migrate_checks_options_before_sending(run: Run, api: CannedApi) -> None:
    result = run("vm", "migrate", "web1", "--to", "h2", "--parallel", "0")
    assert result.exit_code == 2
    assert not api.requests_to("POST", "/vms/web1/migrate")


def test_a_failed_migration_exits_1_with_its_error(run: Run, api: CannedApi) -> None:
    api.state.vms["web1"] = vm_info("web1", VmState.RUNNING, host="h1")
    error = "migration of VM web1 from h1 to h2 over tls failed: …; the VM keeps running on h1"
    api.state.task_plans["vm.migrate"] = [{"state": "failed", "error": error}]
    result = run("vm", "migrate", "web1", "--to", "h2")
    assert result.exit_code == 1
    assert "the VM keeps running on h1" in result.stderr
    # The bar ends with a cross, never a tick or a spinner frozen mid-turn.
    (bar,) = [line for line in result.stderr.splitlines() if "vm.migrate web1" in line]
    assert bar.startswith("✗ ") and "failed" in bar, bar


def test_evacuate(run: Run, api: CannedApi) -> None:
    api.state.task_plans["host.evacuate"] = [
        {
            "state": "succeeded",
            "result": {"host": "h1", "moved": [{"vm": "a", "to": "h2"}, {"vm": "b", "to": "h3"}]},
        }
    ]
    result = run("host", "evacuate", "h1", "--transport", "ssh")
    assert result.exit_code == 0, result.output
    assert "host h1 is empty and in maintenance (a → h2, b → h3)" in result.stdout
    [(_m, _p, body, _h)] = api.requests_to("POST", "/hosts/h1/evacuate")
    assert json.loads(str(body)) == {"transport": "ssh"}


def test_cluster_show_and_set(run_real: Run, real_api: RealApi) -> None:
    shown = run_real("cluster", "show")
    assert shown.exit_code == 0, shown.output
    assert "allow_insecure_migration  false" in shown.stdout
    changed = run_real("cluster", "set", "allow_insecure_migration", "on")
    assert changed.exit_code == 0, changed.output
    assert "allow_insecure_migration = true" in changed.stdout
    assert "corral host rotate-certs NAME" in changed.stdout
    [(_m, _p, body, _h)] = real_api.requests_to("PATCH", "/cluster/settings")
    assert json.loads(str(body)) == {"allow_insecure_migration": True}
    assert json.loads(run_real("cluster", "show", "--json").stdout)["allow_insecure_migration"]
    with real_api.client() as client:  # the server changed, not just the CLI's answer
        assert client.get("/cluster/settings").json()["allow_insecure_migration"] is True
    assert run_real("cluster", "set", "colour", "red").exit_code == 2
    assert run_real("cluster", "set", "allow_insecure_migration", "maybe").exit_code == 2
